"""Questions left out of scoring in ``meadow eval``: counted per benchmark and reason in results.json
and under the results.md table; ``--strict`` stops on a malformed one (issue #14). The model is a
stand-in (its option log-probabilities are fixed), so no weights are loaded."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from meadow.cli import app
from meadow.errors import InputError
from meadow.eval import loglik
from meadow.eval.results import RESULTS_FORMAT, markdown_table, removed_by_benchmark, summarize
from meadow.eval.run import EvalConfig, LoadedModel, evaluate

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "usmle"


@pytest.fixture
def stand_in(monkeypatch: pytest.MonkeyPatch) -> LoadedModel:
    """A model that always finds option A the most likely."""

    def score(model, tokenizer, requests, **kw):
        scored = [
            SimpleNamespace(logprob=-1.0 if answer.startswith("A:") else -5.0) for _, answer in requests
        ]
        return loglik.Scores(scored, loglik.ScoreStats(options=len(requests)))  # type: ignore[arg-type]

    monkeypatch.setattr(loglik, "score", score)
    resolved = SimpleNamespace(name="stand-in", identity="stand-in@0", sha256=None)
    return LoadedModel(resolved, model=None, tokenizer=None)  # type: ignore[arg-type]


def test_results_show_the_removed_questions_per_benchmark_and_reason(stand_in, tmp_path: Path):
    results = evaluate(EvalConfig([f"usmle:{EXAMPLES}"], tmp_path, progress=False), stand_in)
    assert {name: b["n"] for name, b in results["benchmarks"].items()} == {
        "usmle_step1": 2,
        "usmle_step2": 3,
        "usmle_step3": 3,
    }
    assert results["benchmarks"]["usmle_step2"]["removed"] == {
        "image_listed": 1,
        "merged_options": 1,
        "missing_option": 1,
        "no_options": 1,
    }
    assert results["removed"]["usmle_step3:duplicate_number"] == 2  # all together, as before
    written = json.loads((tmp_path / "results.json").read_text())
    assert written["benchmarks"]["usmle_step1"]["removed"] == {
        "image_field": 1,
        "image_listed": 1,
        "no_options": 1,
    }
    assert written["config"]["strict"] is False
    table = (tmp_path / "results.md").read_text()
    assert table.splitlines()[-1] == (
        "Not scored: usmle_step1 image_field 1, image_listed 1, no_options 1; "
        "usmle_step2 image_listed 1, merged_options 1, missing_option 1, no_options 1; "
        "usmle_step3 ambiguous_solution 1, duplicate 1, duplicate_number 2."
    )


def test_strict_eval_stops_on_a_published_slip(stand_in, tmp_path: Path):
    with pytest.raises(InputError, match=r"step2\.json \(record 1\), question no 2: option D holds"):
        evaluate(EvalConfig([f"usmle:{EXAMPLES}"], tmp_path, progress=False, strict=True), stand_in)
    result = CliRunner().invoke(
        app, ["eval", "-b", f"usmle:{EXAMPLES}/step3.json", "--strict", "-o", str(tmp_path)]
    )
    assert result.exit_code == 1
    assert "2 different questions are numbered 3 (duplicate_number)" in result.output


def _run(name: str, removed: dict[str, int]) -> dict:
    rows = [{"benchmark": "usmle_step1", "acc": True}]
    return {
        "format": RESULTS_FORMAT,
        "model": {"name": name},
        "config": {"mode": "loglik", "shots": 0, "prompt": "medalpaca"},
        "benchmarks": summarize(rows, ["acc"]),
        "removed": removed,
    }


def test_table_note_for_several_runs():
    same = {"usmle_step1:image_listed": 27}
    table = markdown_table([_run("a", same), _run("b", same)])
    assert table.endswith("|\n\nNot scored: usmle_step1 image_listed 27.\n")
    table = markdown_table([_run("a", same), _run("b", {})])
    assert table.endswith(
        "\nNot scored in a (loglik, 0-shot, medalpaca): usmle_step1 image_listed 27.\n"
        "Not scored in b (loglik, 0-shot, medalpaca): none.\n"
    )
    assert "Not scored" not in markdown_table([_run("a", {}), {**_run("b", {}), "removed": None}])
    assert removed_by_benchmark({"pubmedqa:not_in_test_set": 500, "mmlu:x": 1}) == {
        "mmlu": {"x": 1},
        "pubmedqa": {"not_in_test_set": 500},
    }
