"""Accuracy, Wilson intervals, the results table and --compare (no model needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from meadow.cli import app
from meadow.errors import MeadowError
from meadow.eval.results import RESULTS_FORMAT, load_results, markdown_table, summarize, wilson


def test_wilson_interval_known_values():
    low, high = wilson(8, 10)
    assert (round(low, 4), round(high, 4)) == (0.4902, 0.9433)
    assert wilson(0, 5)[0] == 0.0 and wilson(5, 5)[1] == 1.0
    assert wilson(0, 0) == (0.0, 1.0)
    low, high = wilson(50, 100)
    assert low == pytest.approx(1 - high)


def _results(name: str, benchmarks: dict[str, tuple[int, int]]) -> dict:
    rows = [{"benchmark": b, "acc": i < correct} for b, (correct, n) in benchmarks.items() for i in range(n)]
    return {
        "format": RESULTS_FORMAT,
        "model": {"name": name},
        "config": {"mode": "loglik", "shots": 0, "prompt": "medalpaca"},
        "benchmarks": summarize(rows, ["acc"]),
    }


def test_summarize_and_table():
    r = _results("m1", {"mmlu": (3, 4), "usmle_step1": (1, 2)})
    assert r["benchmarks"]["mmlu"]["n"] == 4
    assert r["benchmarks"]["mmlu"]["acc"]["accuracy"] == 0.75
    table = markdown_table([r, _results("m2", {"mmlu": (1, 4)})])
    lines = table.splitlines()
    assert lines[0] == "| model | mmlu | usmle_step1 |"
    assert lines[2].startswith("| m1 (loglik, 0-shot, medalpaca) | 75.0 (30.1-95.4), n=4 | 50.0 (")
    assert lines[3] == "| m2 (loglik, 0-shot, medalpaca) | 25.0 (4.6-69.9), n=4 | - |"


def test_compare_prints_the_table_of_several_runs(tmp_path: Path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(_results("model-a", {"mmlu": (3, 4)})))
    b.write_text(json.dumps(_results("model-b", {"mmlu": (2, 4), "medqa_4opt": (1, 1)})))
    result = CliRunner().invoke(app, ["eval", "--compare", str(a), str(b)])
    assert result.exit_code == 0, result.output
    assert "| model | medqa_4opt | mmlu |" in result.output
    assert "| model-a (loglik, 0-shot, medalpaca) | - | 75.0 (30.1-95.4), n=4 |" in result.output
    assert "model-b" in result.output


def test_compare_rejects_other_json(tmp_path: Path):
    bad = tmp_path / "x.json"
    bad.write_text("{}")
    with pytest.raises(MeadowError, match="not a meadow eval results file"):
        load_results(bad)
    result = CliRunner().invoke(app, ["eval", "--compare", str(bad)])
    assert result.exit_code == 1
    assert "not a meadow eval results file" in result.output
