"""Scale check of near-duplicate removal: `meadow build` with `near_dedup` on 50k, 100k, 200k records.

The records are synthetic but made of real text: every sentence, question and instruction comes
from the real fixture slices (../shared/fixtures/raw: WikiDoc, ChatDoctor, CORD-19, PubMed,
MEDIQA, MMLU, OpenAssistant, StackExchange), and each record strings together 3 to 12 sentences
drawn at random, so two records share little text, as in the real data. A known fraction
(default 10%) are planted near duplicates of an earlier record: one or two words changed, case and
punctuation changed, or a sentence appended. Each size is one medAlpaca JSON file read by one
source (`n: all`), built twice in child processes, with near dedup and without; each child reports
its own peak RSS (ru_maxrss). The near-dedup phase's time is the manifest's `near_dedup.seconds`.

Goal (issue #8): near-linear time (t(200k) / (4 t(50k)) close to 1) and memory bounded by the
records kept (the step's extra peak RSS grows with the records, at well under 1 KiB a record).

    python bench/dedup_scale.py [--sizes 50000 100000 200000] [--planted 0.1] [--workdir /tmp/meadow-dedup]
"""

from __future__ import annotations

import argparse
import json
import random
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO.parent / "shared/fixtures/raw"
SOURCES = [  # loader, path glob under FIXTURES, options
    ("wikidoc", "wikidoc/*.json", {"kind": "patient_information"}),
    ("chatdoctor", "chatdoctor/*.json", {}),
    ("cord19", "cord19/metadata.first150.csv", {}),
    ("pubmed_causal", "pubmed_causal/*.csv", {}),
    ("pubmed_health_advice", "pubmed_health_advice/*.csv", {}),
    ("mediqa", "mediqa/*.xml", {}),
    ("mmlu", "mmlu/*/*.csv", {}),
    ("openassistant", "openassistant/*.jsonl", {}),
    ("stackexchange", "stackexchange/*/Posts*.xml", {}),
]
SENTENCE = re.compile(r"(?<=[.!?])\s+")


def pools() -> tuple[list[str], list[str], list[str]]:
    """Instructions, inputs and output sentences of the real fixture records."""
    from meadow import sources
    from meadow.records import Record

    instructions: set[str] = set()
    inputs: set[str] = set()
    sentences: set[str] = set()
    for loader, pattern, options in SOURCES:
        spec = sources.get(loader)
        paths = sorted(FIXTURES.glob(pattern))
        for item in spec.load(paths, spec.options.model_validate(options)):
            if isinstance(item, Record):
                instructions.add(item.instruction)
                if item.input:
                    inputs.add(item.input[:600])
                sentences.update(s for s in SENTENCE.split(item.output) if len(s.split()) >= 4)
    return sorted(instructions), sorted(inputs), sorted(sentences)


def plant(rng: random.Random, record: dict[str, str], sentences: list[str]) -> dict[str, str]:
    """A near duplicate of ``record``: a word or two changed, case and punctuation changed, or a
    sentence appended."""
    out = dict(record)
    kind = rng.randrange(3)
    if kind == 0:
        words = out["output"].split(" ")
        for _ in range(rng.randint(1, 2)):
            words[rng.randrange(len(words))] = rng.choice(["patient", "dose", "often", "severe", "daily"])
        out["output"] = " ".join(words)
    elif kind == 1:
        out["output"] = out["output"].upper().replace(".", " !").replace(",", ";")
    else:
        out["output"] = f"{out['output']} {rng.choice(sentences)}"
    return out


def generate(path: Path, size: int, planted: float, seed: int = 0) -> tuple[int, int]:
    """Write ``size`` records to ``path``; returns how many are planted copies, and how many of
    those reach a Jaccard similarity of 0.8 with the record they copy (the rest are too short
    for their edit to stay above it)."""
    instructions, inputs, sentences = pools()
    rng = random.Random(seed)
    records: list[dict[str, str]] = []
    copies: list[tuple[int, int]] = []
    for _ in range(size):
        if records and rng.random() < planted:
            original = rng.randrange(len(records))
            copies.append((original, len(records)))
            records.append(plant(rng, records[original], sentences))
            continue
        records.append(
            {
                "instruction": rng.choice(instructions),
                "input": rng.choice(inputs) if rng.random() < 0.7 else "",
                "output": " ".join(rng.sample(sentences, rng.randint(3, 12))),
            }
        )
    path.write_text(json.dumps(records), encoding="utf-8")
    return len(copies), similar_pairs(records, copies)


def similar_pairs(records: list[dict[str, str]], pairs: list[tuple[int, int]], threshold: float = 0.8) -> int:
    from meadow.quality.near_dedup import Shingler, jaccard
    from meadow.records import Record

    shingler = Shingler(5, 128)
    count = 0
    for start in range(0, len(pairs), 1024):
        chunk = pairs[start : start + 1024]
        a = shingler.shingles([Record(**records[i], source="b", id="b:0") for i, _ in chunk])
        b = shingler.shingles([Record(**records[j], source="b", id="b:0") for _, j in chunk])
        count += sum(jaccard(x, y) >= threshold for x, y in zip(a, b, strict=True))
    return count


def child(recipe: Path) -> None:
    from meadow.build import build

    t0 = time.perf_counter()
    result = build(recipe, progress=False)
    seconds = time.perf_counter() - t0
    src = result.manifest.to_json()["sources"]["synthetic"]
    near = result.manifest.to_json().get("near_dedup", {})
    print(
        json.dumps(
            {
                "seconds": seconds,
                "near_seconds": near.get("seconds", 0.0),
                "read": src["read"],
                "duplicates": src["duplicates"],
                "near_duplicates": src.get("near_duplicates", 0),
                "kept": src["sampled"],
                "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,  # Linux: KiB
            }
        )
    )


def run(workdir: Path, data: Path, near: bool) -> dict:
    recipe = workdir / f"bench_{'near' if near else 'plain'}.yaml"
    recipe.write_text(
        f"name: bench\noutput_dir: {workdir / 'out'}\n{'near_dedup: true' if near else ''}\nsources:\n"
        f"  synthetic:\n    loader: wikidoc\n    path: {data}\n    options: {{kind: patient_information}}\n"
    )
    proc = subprocess.run([sys.executable, __file__, "--child", str(recipe)], capture_output=True, text=True)
    if proc.returncode:
        sys.exit(proc.stderr)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[50_000, 100_000, 200_000])
    ap.add_argument("--planted", type=float, default=0.1, help="fraction of planted near duplicates")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/meadow-dedup"))
    ap.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child)
        return
    if not FIXTURES.is_dir():
        sys.exit(f"the real fixture slices are needed: {FIXTURES} not found")
    args.workdir.mkdir(parents=True, exist_ok=True)

    rows = []
    for size in args.sizes:
        data = args.workdir / f"records_{size}.json"
        planted, similar = generate(data, size, args.planted)
        plain = run(args.workdir, data, near=False)
        near = run(args.workdir, data, near=True)
        rows.append((size, similar, plain, near))
        print(
            f"{size:>9,} records ({data.stat().st_size / 2**20:,.0f} MiB, {planted:,} planted, "
            f"{similar:,} of them >= 0.8): "
            f"near dedup {near['near_seconds']:.1f} s, found {near['near_duplicates']:,} "
            f"(+{near['duplicates']:,} exact); build {plain['seconds']:.1f} s without, "
            f"{near['seconds']:.1f} s with",
            flush=True,
        )

    base_size, _, base_plain, base_near = rows[0]
    print()
    print(
        "| records | planted >= 0.8 | found | near-dedup s | records/s | time vs linear | "
        "build s (off / on) | peak RSS off | peak RSS on | near-dedup RSS | per record |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for size, planted, plain, near in rows:
        linear = near["near_seconds"] / (base_near["near_seconds"] * size / base_size)
        extra = near["peak_rss"] - plain["peak_rss"]
        print(
            f"| {size:,} | {planted:,} | {near['near_duplicates'] + near['duplicates']:,} "
            f"| {near['near_seconds']:.1f} | {size / near['near_seconds']:,.0f} | {linear:.2f}x "
            f"| {plain['seconds']:.1f} / {near['seconds']:.1f} | {plain['peak_rss'] / 2**20:,.0f} MiB "
            f"| {near['peak_rss'] / 2**20:,.0f} MiB | {extra / 2**20:+,.0f} MiB | {extra / size:,.0f} B |"
        )
    size, _, plain, near = rows[-1]
    if len(rows) > 1:
        grow = (near["peak_rss"] - plain["peak_rss"]) / max(1, base_near["peak_rss"] - base_plain["peak_rss"])
        ratio = near["near_seconds"] / base_near["near_seconds"]
        print(f"\n{size // base_size}x the records: near-dedup time x{ratio:.2f}, extra peak RSS x{grow:.2f}")


if __name__ == "__main__":
    main()
