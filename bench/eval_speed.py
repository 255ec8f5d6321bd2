"""Speed of `meadow eval` log-likelihood scoring: questions/s batched vs one at a time.

The questions are real MMLU val questions (../shared/fixtures/raw/mmlu/val/*.csv, medical
subjects), 0-shot in the medAlpaca template, scored on the embedded SmolLM2 (or --model). Both
runs score the same requests (each question's options as continuations of its prompt) in the
same process, after one warm-up batch; the ratio is batched / one-at-a-time. The scores of the
two runs are checked to agree (|delta log-prob| < 1e-3), so the speed is not bought with a change
of result.

    python bench/eval_speed.py [--questions 32] [--batch-size 16] [--model smollm2] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

from meadow.benchmarks import load_benchmark
from meadow.eval.loglik import score
from meadow.eval.prompts import PromptBuilder, answer_text
from meadow.eval.run import load_model

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO.parent / "shared/fixtures/raw/mmlu/val"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--questions", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--model", default=None)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--fixtures", type=Path, default=FIXTURES)
    args = parser.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    questions = load_benchmark(f"mmlu:{args.fixtures}/*.csv").questions[: args.questions]
    lm = load_model(args.model)
    builder = PromptBuilder("medalpaca")
    requests = [(builder.build(q), answer_text(q, letter)) for q in questions for letter in q.options]
    score(lm.model, lm.tokenizer, requests[: args.batch_size], batch_size=args.batch_size)  # warm-up

    timings = {}
    results = {}
    for name, batch_size in (("one_at_a_time", 1), ("batched", args.batch_size)):
        start = time.perf_counter()
        results[name] = score(lm.model, lm.tokenizer, requests, batch_size=batch_size)
        timings[name] = time.perf_counter() - start
    delta = max(
        abs(a.logprob - b.logprob) for a, b in zip(results["batched"], results["one_at_a_time"], strict=True)
    )
    assert delta < 1e-3, f"batched and one-at-a-time scores differ by {delta}"
    report = {
        "model": lm.resolved.identity,
        "questions": len(questions),
        "requests": len(requests),
        "batch_size": args.batch_size,
        "one_at_a_time_q_per_s": round(len(questions) / timings["one_at_a_time"], 2),
        "batched_q_per_s": round(len(questions) / timings["batched"], 2),
        "ratio": round(timings["one_at_a_time"] / timings["batched"], 2),
        "max_abs_logprob_delta": delta,
        "torch_threads": torch.get_num_threads(),
        "device": str(next(lm.model.parameters()).device),
        "machine": platform.machine(),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
