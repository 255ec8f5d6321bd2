"""Prefix sharing (each prompt read once, its options packed after it) against the full pass (one
sequence per option, as lm-evaluation-harness): same log-probabilities and choices on the example
benchmarks, token merges at the prompt/option boundary, and each fallback to the full pass with
its reason; the harness's token split, empty contexts included."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from meadow.eval import loglik
from meadow.eval.loglik import encode_pair, prefix_token_id, score
from meadow.eval.run import EvalConfig, LoadedModel, evaluate, load_model

pytestmark = pytest.mark.slow

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
# the example benchmarks that load for evaluation (examples/mmlu's dev and val files hold the
# malformed rows the build's demo recipe counts as drops; evaluation refuses them)
EXAMPLE_BENCHMARKS = [
    f"mmlu:{EXAMPLES}/mmlu/test/*.csv",
    f"medqa:{EXAMPLES}/medqa/US/*.jsonl",
    f"usmle:{EXAMPLES}/usmle/step1.json",
]
# prompt/option boundaries where the first option token merges with the prompt's last one
MERGES = [
    ("The diagnosis is pneumo", "nia of the left lung"),
    ("The diagnosis is pneumo", "thorax on the right"),
    ("The patient has hypo", "thyroidism is likely"),
]


@pytest.fixture(scope="module")
def lm(meadow_cache: Path) -> LoadedModel:
    return load_model(None)


def _rows(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "questions.jsonl").read_text().splitlines()]


def test_prefix_sharing_equals_the_full_pass_on_the_example_benchmarks(lm, tmp_path):
    results = {}
    for shared in (True, False):
        cfg = EvalConfig(
            benchmarks=EXAMPLE_BENCHMARKS,
            output_dir=tmp_path / str(shared),
            prefix_cache=shared,
            progress=False,
        )
        results[shared] = evaluate(cfg, lm)
    packed, full = _rows(tmp_path / "True"), _rows(tmp_path / "False")
    # 2 MMLU, 8 MedQA, 2 USMLE (of 4: an image question and one without options are removed)
    assert len(packed) == len(full) == 12
    worst = 0.0
    for x, y in zip(packed, full, strict=True):
        assert x["id"] == y["id"]
        assert list(x["logprobs"]) == list(y["logprobs"])
        worst = max(worst, *(abs(x["logprobs"][k] - y["logprobs"][k]) for k in x["logprobs"]))
        assert (x["choice"], x["choice_norm"]) == (y["choice"], y["choice_norm"])
    assert worst < 1e-4
    assert results[True]["benchmarks"] == results[False]["benchmarks"]
    options = sum(len(r["logprobs"]) for r in packed)
    shared, alone = results[True]["loglik"], results[False]["loglik"]
    assert shared["options"] == alone["options"] == options
    assert shared["prompts_shared"] == len(packed)
    assert (shared["full_pass"], shared["boundary_merges"]) == (0, 0)
    assert alone["full_pass_reasons"] == {"no_prefix_cache": options}
    assert shared["tokens_read"] < alone["tokens_read"] / 3
    assert results[True]["config"]["prefix_cache"] is True


def _compare(lm: LoadedModel, requests: list[tuple[str, str]], **kw) -> loglik.Scores:
    packed = score(lm.model, lm.tokenizer, requests, batch_size=4, **kw)
    full = score(lm.model, lm.tokenizer, requests, batch_size=4, prefix_cache=False)
    for a, b in zip(packed.scored, full.scored, strict=True):
        assert a.logprob == pytest.approx(b.logprob, abs=1e-4)
        assert (a.greedy, a.tokens) == (b.greedy, b.tokens)
    return packed


def test_a_merged_boundary_is_scored_on_the_harness_tokens(lm):
    for context, option in MERGES:
        ctx, cont = encode_pair(lm.tokenizer, context, option)
        whole = lm.tokenizer(context + option, add_special_tokens=False)["input_ids"]
        assert whole[: len(ctx)] != ctx  # the boundary merges...
        assert cont == whole[len(ctx) :]  # ...and the harness scores what follows ctx's length
    prompt = "Question: which organ does the thyroid hormone act on?\nAnswer:"
    requests = [*MERGES, (prompt, " The heart"), (prompt, " Every organ"), ("", "Hello there")]
    stats = _compare(lm, requests).stats
    assert stats.boundary_merges == 3
    assert stats.prompts == 4 and not stats.full_pass


def test_fallbacks_are_counted_and_score_the_same(lm, monkeypatch):
    prompt = "A 45-year-old woman has fatigue and a low ferritin. The most likely cause is"
    requests = [(prompt, " iron deficiency"), (prompt, " vitamin B12 deficiency anemia, pernicious")]
    short = len(lm.tokenizer(prompt)["input_ids"]) + 4
    with monkeypatch.context() as m:  # the long option is left-truncated: its prompt differs
        m.setattr(loglik, "max_length", lambda model, tokenizer: short)
        stats = _compare(lm, requests).stats
    assert dict(stats.full_pass) == {"truncated": 1} and stats.prompts == 1
    with monkeypatch.context() as m:  # a sliding window the packed mask would lift
        m.setattr(lm.model.config, "sliding_window", short, raising=False)
        stats = _compare(lm, requests).stats
    assert dict(stats.full_pass) == {"sliding_window": 1}


def test_a_model_that_ignores_the_packed_mask_takes_the_full_pass(lm):
    import torch

    class NoCustomMask(torch.nn.Module):
        """SmolLM2 behind a forward that drops 4D masks: packed options would see each other."""

        def __init__(self, model):
            super().__init__()
            self.inner, self.config = model, model.config

        def get_input_embeddings(self):
            return self.inner.get_input_embeddings()

        def forward(self, input_ids, attention_mask=None, position_ids=None):
            if attention_mask is not None and attention_mask.dim() == 4:
                attention_mask = None
            return self.inner(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids)

    model = NoCustomMask(lm.model)
    requests = [("The capital of France is", " Paris"), ("The capital of France is", " Lyon")]
    scores = score(model, lm.tokenizer, requests)
    assert dict(scores.stats.full_pass) == {"model": 2}
    assert score(lm.model, lm.tokenizer, requests).scored[0].logprob == pytest.approx(
        scores.scored[0].logprob, abs=1e-4
    )


def test_empty_context_starts_from_the_harness_prefix_token(lm):
    """lm-evaluation-harness's HFLM.prefix_token_id: BOS, else EOS (SmolLM2 has both, 1 and 2);
    a continuation that starts with that token is its own context."""
    tokenizer = lm.tokenizer
    assert (tokenizer.bos_token_id, tokenizer.eos_token_id) == (1, 2)
    assert prefix_token_id(tokenizer) == 1
    hello = tokenizer("Hello there", add_special_tokens=False)["input_ids"]
    assert encode_pair(tokenizer, "", "Hello there") == ([1], hello)
    user = tokenizer("<|im_start|>user", add_special_tokens=False)["input_ids"]
    assert user[0] == 1
    assert encode_pair(tokenizer, "", "<|im_start|>user") == ([1], user[1:])

    class NoBos:
        bos_token_id, eos_token_id = None, 2

    assert prefix_token_id(NoBos()) == 2
