"""Log-likelihood mode agrees with lm-evaluation-harness, question by question, on a custom local
task holding the same prompts and options (real MMLU dev questions, the embedded SmolLM2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from meadow.benchmarks import load_benchmark
from meadow.eval.prompts import PromptBuilder, answer_text
from meadow.eval.run import EvalConfig, evaluate, load_model

pytestmark = pytest.mark.slow


def _task(folder: Path, docs: list[dict]) -> None:
    (folder / "docs.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    (folder / "meadow_agree.yaml").write_text(
        f"""task: meadow_agree
dataset_path: json
dataset_kwargs:
  data_files:
    test: {folder / "docs.jsonl"}
  cache_dir: {folder / "hf-datasets"}
test_split: test
output_type: multiple_choice
doc_to_text: prompt
doc_to_choice: choices
doc_to_target: gold
target_delimiter: ""
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
  - metric: acc_norm
    aggregation: mean
    higher_is_better: true
"""
    )


@pytest.mark.parametrize("prompt", ["medalpaca", "chat"])
def test_loglik_agrees_with_lm_evaluation_harness(prompt, meadow_cache, raw_fixtures, tmp_path):
    lm_eval = pytest.importorskip("lm_eval")
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    spec = f"mmlu:{raw_fixtures}/mmlu/dev/college_medicine_dev.csv"
    cfg = EvalConfig(
        benchmarks=[spec],
        output_dir=tmp_path / "meadow",
        prompt=prompt,
        limit=3,
        batch_size=4,
        progress=False,
    )
    lm = load_model(None)
    evaluate(cfg, lm)
    ours = [json.loads(line) for line in (tmp_path / "meadow" / "questions.jsonl").read_text().splitlines()]

    questions = load_benchmark(spec).questions[:3]
    builder = PromptBuilder(prompt, tokenizer=lm.tokenizer)
    docs = [
        {
            "id": q.id,
            "prompt": builder.build(q),
            "choices": [answer_text(q, letter) for letter in q.options],
            "gold": list(q.options).index(q.answer),
        }
        for q in questions
    ]
    task_dir = tmp_path / "task"
    task_dir.mkdir()
    _task(task_dir, docs)
    out = lm_eval.simple_evaluate(
        model=HFLM(pretrained=lm.model, tokenizer=lm.tokenizer, batch_size=4),
        tasks=["meadow_agree"],
        task_manager=TaskManager(include_path=str(task_dir)),
        log_samples=True,
        num_fewshot=0,
    )
    samples = sorted(out["samples"]["meadow_agree"], key=lambda s: s["doc_id"])
    assert len(samples) == len(ours) == 3
    for sample, row in zip(samples, ours, strict=True):
        assert sample["doc"]["id"] == row["id"]
        theirs = [lp for lp, _greedy in sample["filtered_resps"]]
        assert list(row["logprobs"].values()) == pytest.approx(theirs, abs=1e-4)
        assert bool(sample["acc"]) == row["correct"]
        assert bool(sample["acc_norm"]) == row["correct_norm"]


def test_empty_context_scores_as_lm_evaluation_harness(meadow_cache):
    """An empty context starts from the harness's prefix token (BOS for SmolLM2, not EOS), and a
    continuation that starts with it is its own context."""
    pytest.importorskip("lm_eval")
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    from meadow.eval.loglik import score

    lm = load_model(None)
    requests = [
        ("", "Hello there, how are you?"),
        ("", "<|im_start|>user\nWhat is anaemia?"),
        ("Question: what is anaemia?\nAnswer:", " A low haemoglobin"),
    ]
    harness = HFLM(pretrained=lm.model, tokenizer=lm.tokenizer, batch_size=4)
    theirs = harness.loglikelihood(
        [Instance("loglikelihood", {}, request, i) for i, request in enumerate(requests)], disable_tqdm=True
    )
    for shared in (True, False):
        ours = score(lm.model, lm.tokenizer, requests, batch_size=4, prefix_cache=shared).scored
        assert [s.logprob for s in ours] == pytest.approx([lp for lp, _ in theirs], abs=1e-4)
        assert [s.greedy for s in ours] == [greedy for _, greedy in theirs]
