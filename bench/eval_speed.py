"""Speed of `meadow eval --mode loglik` against lm-evaluation-harness on USMLE-style questions.

Three scorers of the same requests (each question's options as continuations of its medAlpaca
prompt), on the same model (the embedded SmolLM2, as the tests load it, or --model), at the same
batch size:

- ``harness``: lm-evaluation-harness's ``HFLM.loglikelihood`` (one sequence per option);
- ``meadow``: ``meadow.eval.loglik.score`` with prefix sharing (each prompt read once, its
  options packed after it);
- ``meadow_full``: the same with ``prefix_cache=False``: one sequence per option, meadow's path
  before prefix sharing, the reference for peak memory.

Each run is a fresh child process (model load not timed; one warm-up question first; peak RSS of
the whole child), the scorers alternating within a repeat (the order reversed every other
repeat); medians over the repeats. The chosen options (acc and acc_norm) of the three must be
identical, and the log-probabilities are compared option by option.

Question sets (``--sets``):

- ``medqa``: MedQA-style, a vignette prompt of at least ``--min-prompt-tokens`` (250) tokens with
  4 or 5 options (alternating);
- ``usmle``: USMLE-style, 5 to 9 options (cycling).

By default both are built from the real USMLE-style vignettes of MMLU professional_medicine
(../shared/fixtures/raw/mmlu/{dev,val}, 36 questions): the published question and its four
options, plus distractors drawn (seeded) from the other questions' options, shown in a rotated
order; where --questions asks for more than there are vignettes, a vignette comes back with other
distractors and order (a different prompt, so no request repeats). ``--medqa SPEC`` /
``--usmle SPEC`` (``KIND:PATH_OR_GLOB`` as ``meadow eval -b``, e.g. a MedQA test file from
``meadow fetch``) take real questions instead, the first ``--questions`` of them (for medqa: those
with prompts of at least --min-prompt-tokens tokens).

    python bench/eval_speed.py [--questions 40] [--batch-size 8] [--repeats 3] [--threads N]
                               [--sets medqa,usmle] [--medqa SPEC] [--usmle SPEC] [--model M]
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # this checkout's meadow, not another one installed

from meadow.benchmarks import Question, load_benchmark  # noqa: E402
from meadow.eval.loglik import choose, encode_pair, max_length, score  # noqa: E402
from meadow.eval.prompts import PromptBuilder, answer_text  # noqa: E402

FIXTURES = REPO.parent / "shared/fixtures/raw/mmlu"
SCORERS = ("harness", "meadow", "meadow_full")
LETTERS = "ABCDEFGHI"
log = logging.getLogger("eval_speed")


def vignettes(fixtures: Path) -> list[Question]:
    return load_benchmark(f"mmlu:{fixtures}/*/professional_medicine_*.csv").questions


def styled(
    base: list[Question], counts: list[int], n: int, min_tokens: int, tokenizer: Any
) -> list[Question]:
    """``n`` questions from the vignettes ``base``: the i-th with ``counts[i % len(counts)]``
    options (its own four and seeded distractors from the others), in a seeded rotation; only
    prompts of at least ``min_tokens`` tokens."""
    builder = PromptBuilder("medalpaca")
    pool = [(q.id, text) for q in base for text in q.options.values()]
    out: list[Question] = []
    for round_ in range(64):
        for q in base:
            if len(out) == n:
                return out
            k = counts[len(out) % len(counts)]
            rng = random.Random(f"{q.id}:{round_}")
            own = list(q.options.values())
            others = sorted({text for qid, text in pool if qid != q.id and text not in own})
            texts = own + rng.sample(others, k - len(own))
            shift = rng.randrange(k)
            texts = texts[shift:] + texts[:shift]
            answer = LETTERS[texts.index(q.options[q.answer])]
            made = Question(
                id=f"{q.id}:{round_}",
                benchmark=f"{k}opt",
                question=q.question,
                options=dict(zip(LETTERS, texts, strict=False)),
                answer=answer,
            )
            if len(tokenizer(builder.build(made), add_special_tokens=False)["input_ids"]) >= min_tokens:
                out.append(made)
        if not out:
            break
    raise SystemExit(f"only {len(out)} questions with prompts of >= {min_tokens} tokens; ask for fewer")


def questions_for(args: argparse.Namespace, tokenizer: Any) -> list[Question]:
    min_tokens = args.min_prompt_tokens if args.set == "medqa" else 0
    spec = args.medqa if args.set == "medqa" else args.usmle
    if spec:
        builder = PromptBuilder("medalpaca")
        real = [
            q
            for q in load_benchmark(spec).questions
            if len(tokenizer(builder.build(q), add_special_tokens=False)["input_ids"]) >= min_tokens
        ]
        return real[: args.questions]
    counts = [4, 5] if args.set == "medqa" else [5, 6, 7, 8, 9]
    return styled(vignettes(args.fixtures), counts, args.questions, min_tokens, tokenizer)


# --- one scorer in a child process --------------------------------------------------------------


def child(args: argparse.Namespace) -> None:
    import torch

    from meadow.eval.run import load_model

    if args.threads:
        torch.set_num_threads(args.threads)
    lm = load_model(args.model)
    questions = questions_for(args, lm.tokenizer)
    builder = PromptBuilder("medalpaca")
    prompts = [builder.build(q) for q in questions]
    per_question = [
        [(p, answer_text(q, letter)) for letter in q.options] for p, q in zip(prompts, questions, strict=True)
    ]
    requests = [r for rs in per_question for r in rs]
    stats: dict[str, Any] = {}

    if args.scorer == "harness":
        from lm_eval.api.instance import Instance
        from lm_eval.models.huggingface import HFLM

        harness = HFLM(pretrained=lm.model, tokenizer=lm.tokenizer, batch_size=args.batch_size)

        def run(reqs: list[tuple[str, str]]) -> list[float]:
            instances = [Instance("loglikelihood", {}, r, i) for i, r in enumerate(reqs)]
            return [lp for lp, _ in harness.loglikelihood(instances, disable_tqdm=True)]
    else:
        shared = args.scorer == "meadow"

        def run(reqs: list[tuple[str, str]]) -> list[float]:
            scores = score(lm.model, lm.tokenizer, reqs, batch_size=args.batch_size, prefix_cache=shared)
            stats.update(scores.stats.as_dict())
            return [s.logprob for s in scores.scored]

    run(per_question[0])  # warm-up
    start = time.perf_counter()
    logprobs = run(requests)
    seconds = time.perf_counter() - start
    if args.scorer == "harness":
        stats = harness_tokens(lm, requests, args.batch_size)
    chosen, at = [], 0
    for q, rs in zip(questions, per_question, strict=True):
        mine = logprobs[at : at + len(rs)]
        at += len(rs)
        letters = list(q.options)
        lengths = [len(answer_text(q, letter)) for letter in letters]
        chosen.append([letters[choose(mine)], letters[choose(mine, lengths)]])
    report = {
        "scorer": args.scorer,
        "set": args.set,
        "questions": len(questions),
        "options": len(requests),
        "prompt_tokens_min": min(len(encode_pair(lm.tokenizer, p, " x")[0]) for p in prompts),
        "seconds": seconds,
        "questions_per_s": len(questions) / seconds,
        "tokens_read_per_question": stats["tokens_read"] / len(questions),
        "tokens_padded_per_question": stats["tokens_padded"] / len(questions),
        "full_pass": stats.get("full_pass"),
        "boundary_merges": stats.get("boundary_merges"),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "chosen": chosen,
        "logprobs": logprobs,
        "model": lm.resolved.identity,
        "torch_threads": torch.get_num_threads(),
    }
    Path(args.out).write_text(json.dumps(report))


def harness_tokens(lm: Any, requests: list[tuple[str, str]], batch_size: int) -> dict[str, int]:
    """The tokens lm-evaluation-harness's HFLM feeds for these requests: ``(ctx + cont)[:-1]`` each,
    sorted by length descending and right-padded per batch, as its ``_loglikelihood_tokens``."""
    limit = max_length(lm.model, lm.tokenizer)
    lengths = []
    for context, continuation in requests:
        ctx, cont = encode_pair(lm.tokenizer, context, continuation)
        lengths.append(len((ctx + cont)[-(limit + 1) :][:-1]))
    lengths.sort(reverse=True)
    padded = sum(lengths[k] * len(lengths[k : k + batch_size]) for k in range(0, len(lengths), batch_size))
    return {"tokens_read": sum(lengths), "tokens_padded": padded}


# --- the parent: alternate the scorers in fresh processes, compare --------------------------------


def parent(args: argparse.Namespace) -> None:
    sets = [s.strip() for s in args.sets.split(",") if s.strip()]
    runs: dict[tuple[str, str], list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeats):
            order = SCORERS if repeat % 2 == 0 else tuple(reversed(SCORERS))
            for set_name in sets:
                for scorer in order:
                    out = Path(tmp) / f"{set_name}-{scorer}-{repeat}.json"
                    command = [sys.executable, __file__, "--child", scorer, "--set", set_name]
                    command += ["--out", str(out), *forwarded(args)]
                    log.info("repeat %d: %s on %s", repeat + 1, scorer, set_name)
                    subprocess.run(command, check=True)
                    report = json.loads(out.read_text())
                    log.info(
                        "  %.3f questions/s, %.0f tokens read per question, peak RSS %.0f MiB",
                        report["questions_per_s"],
                        report["tokens_read_per_question"],
                        report["peak_rss_mib"],
                    )
                    runs.setdefault((set_name, scorer), []).append(report)
    summary: dict[str, Any] = {
        "batch_size": args.batch_size,
        "repeats": args.repeats,
        "machine": f"{platform.machine()}, {platform.python_version()}",
        "sets": {},
    }
    for set_name in sets:
        by = {scorer: runs[(set_name, scorer)] for scorer in SCORERS}
        first = {scorer: reports[0] for scorer, reports in by.items()}
        qps = {k: statistics.median(r["questions_per_s"] for r in reports) for k, reports in by.items()}
        rss = {k: statistics.median(r["peak_rss_mib"] for r in reports) for k, reports in by.items()}
        same = all(r["chosen"] == first["harness"]["chosen"] for reports in by.values() for r in reports)
        summary["sets"][set_name] = {
            "questions": first["meadow"]["questions"],
            "options": first["meadow"]["options"],
            "prompt_tokens_min": first["meadow"]["prompt_tokens_min"],
            "questions_per_s": {k: round(v, 3) for k, v in qps.items()},
            "speed_vs_harness": round(qps["meadow"] / qps["harness"], 2),
            "speed_per_repeat": [
                round(m["questions_per_s"] / h["questions_per_s"], 2)
                for m, h in zip(by["meadow"], by["harness"], strict=True)
            ],
            "tokens_read_per_question": {k: round(r["tokens_read_per_question"]) for k, r in first.items()},
            "tokens_padded_per_question": {
                k: round(r["tokens_padded_per_question"]) for k, r in first.items()
            },
            "peak_rss_mib": {k: round(v) for k, v in rss.items()},
            "rss_vs_full_pass": round(rss["meadow"] / rss["meadow_full"], 2),
            "identical_choices": same,
            "max_abs_logprob_diff_vs_harness": max_diff(first["meadow"], first["harness"]),
            "max_abs_logprob_diff_vs_full_pass": max_diff(first["meadow"], first["meadow_full"]),
            "full_pass_options": first["meadow"]["full_pass"],
            "boundary_merges": first["meadow"]["boundary_merges"],
            "goal_met": same
            and qps["meadow"] >= 2 * qps["harness"]
            and rss["meadow"] <= 1.2 * rss["meadow_full"],
        }
    summary["model"] = runs[(sets[0], "meadow")][0]["model"]
    summary["torch_threads"] = runs[(sets[0], "meadow")][0]["torch_threads"]
    print(json.dumps(summary, indent=2))


def max_diff(a: dict[str, Any], b: dict[str, Any]) -> float:
    return max(abs(x - y) for x, y in zip(a["logprobs"], b["logprobs"], strict=True))


def forwarded(args: argparse.Namespace) -> list[str]:
    out = ["--questions", str(args.questions), "--batch-size", str(args.batch_size)]
    out += ["--min-prompt-tokens", str(args.min_prompt_tokens), "--fixtures", str(args.fixtures)]
    for flag, value in (("--model", args.model), ("--threads", args.threads)):
        if value:
            out += [flag, str(value)]
    for flag, value in (("--medqa", args.medqa), ("--usmle", args.usmle)):
        if value:
            out += [flag, value]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--questions", type=int, default=40, help="questions per set")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sets", default="medqa,usmle")
    parser.add_argument("--min-prompt-tokens", type=int, default=250, help="medqa set: the shortest prompt")
    parser.add_argument("--medqa", help="real MedQA questions (KIND:PATH_OR_GLOB) instead of the built set")
    parser.add_argument("--usmle", help="real USMLE questions (KIND:PATH_OR_GLOB) instead of the built set")
    parser.add_argument("--model", default=None)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--fixtures", type=Path, default=FIXTURES)
    parser.add_argument("--child", choices=SCORERS, help=argparse.SUPPRESS)
    parser.add_argument("--set", choices=("medqa", "usmle"), help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.child:
        args.scorer = args.child
        child(args)
    else:
        parent(args)


if __name__ == "__main__":
    main()
