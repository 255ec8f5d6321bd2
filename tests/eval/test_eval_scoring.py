"""Scoring on the embedded SmolLM2 with real MMLU dev questions: log-likelihood mode is
deterministic, batch-size independent and equal to a plain unbatched computation; generate mode;
LoRA adapters; the CLI end to end. (Prefix sharing against the full pass: test_eval_loglik.py.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from meadow.benchmarks import load_benchmark
from meadow.cli import app
from meadow.eval.loglik import choose, encode_pair
from meadow.eval.prompts import INSTRUCTION, PromptBuilder, answer_text, pick_shots
from meadow.eval.run import EvalConfig, LoadedModel, evaluate, load_model

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def lm(meadow_cache: Path) -> LoadedModel:
    import torch

    torch.manual_seed(0)
    return load_model(None)


def _cfg(raw_fixtures: Path, out: Path, **kw) -> EvalConfig:
    return EvalConfig(
        benchmarks=[f"mmlu:{raw_fixtures}/mmlu/dev/anatomy_dev.csv"],
        output_dir=out,
        progress=False,
        **{"limit": 2, **kw},
    )


@pytest.fixture(scope="module")
def first_run(lm: LoadedModel, raw_fixtures: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("eval-a")
    evaluate(_cfg(raw_fixtures, out, batch_size=8), lm)
    return out


def _rows(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "questions.jsonl").read_text().splitlines()]


def test_scores_are_deterministic_across_runs(lm, raw_fixtures, first_run, tmp_path):
    evaluate(_cfg(raw_fixtures, tmp_path, batch_size=8), lm)
    assert (tmp_path / "questions.jsonl").read_bytes() == (first_run / "questions.jsonl").read_bytes()
    a = json.loads((first_run / "results.json").read_text())
    b = json.loads((tmp_path / "results.json").read_text())
    assert a["benchmarks"] == b["benchmarks"]


def test_batched_equals_one_at_a_time(lm, raw_fixtures, first_run, tmp_path):
    evaluate(_cfg(raw_fixtures, tmp_path, batch_size=1), lm)
    batched, single = _rows(first_run), _rows(tmp_path)
    assert [r["id"] for r in batched] == [r["id"] for r in single]
    for x, y in zip(batched, single, strict=True):
        assert x["logprobs"] == pytest.approx(y["logprobs"], abs=1e-4)
        assert (x["choice"], x["choice_norm"]) == (y["choice"], y["choice_norm"])


def test_logprobs_equal_a_plain_forward_pass(lm, raw_fixtures, first_run):
    import torch

    q = load_benchmark(f"mmlu:{raw_fixtures}/mmlu/dev/anatomy_dev.csv").questions[0]
    prompt = PromptBuilder("medalpaca").build(q)
    row = _rows(first_run)[0]
    assert row["id"] == q.id
    for letter in q.options:
        ctx, cont = encode_pair(lm.tokenizer, prompt, answer_text(q, letter))
        ids = torch.tensor([ctx + cont])
        with torch.inference_mode():
            logprobs = torch.log_softmax(lm.model(ids).logits[0].float(), dim=-1)
        expected = sum(float(logprobs[len(ctx) - 1 + i, t]) for i, t in enumerate(cont))
        assert row["logprobs"][letter] == pytest.approx(expected, abs=1e-4)
    lengths = [len(answer_text(q, letter)) for letter in q.options]
    values = list(row["logprobs"].values())
    assert row["choice"] == "ABCD"[choose(values)]
    assert row["choice_norm"] == "ABCD"[choose(values, lengths)]
    assert row["correct"] == (row["choice"] == q.answer)


def test_results_files(first_run):
    results = json.loads((first_run / "results.json").read_text())
    assert results["model"]["name"] == "SmolLM2-135M-Instruct"
    assert results["questions"] == 2
    mmlu = results["benchmarks"]["mmlu"]
    assert mmlu["n"] == 2
    rows = _rows(first_run)
    assert mmlu["acc"]["correct"] == sum(r["correct"] for r in rows)
    assert mmlu["acc_norm"]["correct"] == sum(r["correct_norm"] for r in rows)
    assert set(rows[0]) >= {"id", "benchmark", "prompt_sha256", "answer", "choice", "correct", "logprobs"}
    table = (first_run / "results.md").read_text()
    head = "| model | mmlu |\n|---|---:|\n| SmolLM2-135M-Instruct (loglik, 0-shot, medalpaca) |"
    assert table.startswith(head)
    assert "n=2 |" in table


def test_prompts_few_shot_and_chat(lm, raw_fixtures):
    questions = load_benchmark(f"mmlu:{raw_fixtures}/mmlu/dev/*.csv").questions
    q = questions[0]
    shots = pick_shots(q, questions, 2)
    assert [s.meta["subject"] for s in shots] == ["anatomy", "anatomy"]
    assert q not in shots
    prompt = PromptBuilder("medalpaca").build(q, shots)
    assert prompt.count("### Instruction:\n" + INSTRUCTION) == 3
    assert prompt.count("### Response:\n") == 3
    assert answer_text(shots[0], shots[0].answer) in prompt
    assert prompt.endswith("D: The second and third pharyngeal arches\n\n### Response:\n")
    chat = PromptBuilder("chat", tokenizer=lm.tokenizer).build(q, shots)
    assert chat.count("<|im_start|>assistant\n") == 3
    assert chat.endswith("<|im_start|>assistant\n")


def test_lora_adapter_directory(lm, raw_fixtures, first_run, tmp_path):
    """A freshly initialised LoRA adapter (B = 0) changes nothing: same scores as its base."""
    from peft import LoraConfig, get_peft_model

    base = lm.resolved.load_model()
    peft_model = get_peft_model(base, LoraConfig(r=2, target_modules=["q_proj", "v_proj"]))
    adapter = tmp_path / "adapter"
    peft_model.save_pretrained(adapter)
    assert json.loads((adapter / "adapter_config.json").read_text())["base_model_name_or_path"]
    out = tmp_path / "out"
    results = evaluate(_cfg(raw_fixtures, out, batch_size=8, limit=1, model=str(adapter)))
    assert results["model"]["name"] == "adapter"
    assert results["model"]["base"] == lm.resolved.identity
    assert _rows(out)[0]["logprobs"] == pytest.approx(_rows(first_run)[0]["logprobs"], abs=1e-4)


def test_cli_eval_writes_results(meadow_cache, raw_fixtures, tmp_path):
    out = tmp_path / "cli"
    args = ["eval", "-b", f"mmlu:{raw_fixtures}/mmlu/dev/medical_genetics_dev.csv", "--limit", "1"]
    result = CliRunner().invoke(app, [*args, "-o", str(out), "-q", "--no-prefix-cache"])
    assert result.exit_code == 0, result.output
    assert "| SmolLM2-135M-Instruct (loglik, 0-shot, medalpaca) |" in result.output
    assert sorted(p.name for p in out.iterdir()) == ["questions.jsonl", "results.json", "results.md"]
    assert len(_rows(out)) == 1
    results = json.loads((out / "results.json").read_text())
    assert results["config"]["prefix_cache"] is False
    assert results["loglik"]["full_pass_reasons"] == {"no_prefix_cache": 4}


def test_cli_eval_errors(tmp_path):
    result = CliRunner().invoke(app, ["eval", "-b", f"mmlu:{tmp_path}/none_*.csv", "-o", str(tmp_path)])
    assert result.exit_code == 1
    assert "no such file" in result.output
    result = CliRunner().invoke(app, ["eval", "-b", "mmlu:x.csv", "--mode", "sample"])
    assert result.exit_code == 1
    assert "expected loglik or generate" in result.output


def test_generate_mode_reads_the_letter_of_a_greedy_answer(lm, raw_fixtures, tmp_path):
    from meadow.eval.extract import extract_letter

    cfg = _cfg(raw_fixtures, tmp_path, mode="generate", prompt="chat", limit=2, max_new_tokens=6)
    results = evaluate(cfg, lm)
    rows = _rows(tmp_path)
    assert len(rows) == 2
    questions = load_benchmark(f"mmlu:{raw_fixtures}/mmlu/dev/anatomy_dev.csv").questions
    for row, q in zip(rows, questions, strict=False):
        assert row["generation"]
        assert row["choice"] == extract_letter(row["generation"], q.options)
        assert row["correct"] == (row["choice"] == q.answer)
    # SmolLM2 answers the first question in the training format, "C: The second ..."
    assert rows[0]["generation"].startswith("C: ")
    mmlu = results["benchmarks"]["mmlu"]
    assert mmlu["n"] == 2 and "acc_norm" not in mmlu
    assert mmlu["no_answer"] == sum(r["choice"] is None for r in rows)
    assert results["config"]["max_new_tokens"] == 6
