"""Scale check of `meadow build` on CORD-19: a metadata.csv grown to 1,000,000 rows.

The rows are the real sample's (../shared/fixtures/raw/cord19/metadata.first150.csv, or
examples/cord19/metadata.csv when that is absent), re-keyed so every cord_uid and title
is unique. The whole build (loader, validation, exact dedup, hash-ranked subsample of
n=50,000, outputs) runs in a child process, whose peak RSS is read from the OS. The
baseline, measured in the same run on the same file, is a bare `csv.reader` pass: the
ratio says how much of the build's time is ours on top of parsing.

Goal (issue #3): >= 20,000 rows/s and < 1 GiB peak RSS on the 2-core project machine.

    python bench/build_scale.py [--rows 1000000] [--n 50000] [--workdir /tmp/meadow-bench]
"""

from __future__ import annotations

import argparse
import csv
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SAMPLES = [
    REPO.parent / "shared/fixtures/raw/cord19/metadata.first150.csv",
    REPO / "examples/cord19/metadata.csv",
]


def grow(sample: Path, out: Path, rows: int) -> int:
    with open(sample, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader)
        body = list(reader)
    uid, title = header.index("cord_uid"), header.index("title")
    with open(out, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        for i in range(rows):
            row = list(body[i % len(body)])
            row[uid] = f"b{i:07d}"
            row[title] = f"{row[title]} [{i}]"
            w.writerow(row)
    return out.stat().st_size


def child(recipe: Path) -> None:
    from meadow.build import build

    t0 = time.perf_counter()
    result = build(recipe, progress=False)
    seconds = time.perf_counter() - t0
    src = result.manifest["sources"]["cord19"]
    print(
        json.dumps(
            {
                "seconds": seconds,
                "read": src["read"],
                "kept": src["sampled"],
                "dropped": src["dropped_total"],
                "duplicates": src["duplicates"],
            }
        )
    )


def baseline(path: Path) -> tuple[int, float]:
    t0 = time.perf_counter()
    with open(path, newline="", encoding="utf-8") as f:
        n = sum(1 for _ in csv.reader(f)) - 1
    return n, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--n", type=int, default=50_000)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/meadow-bench"))
    ap.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child)
        return

    sample = next((p for p in SAMPLES if p.exists()), None)
    if sample is None:
        sys.exit("no CORD-19 sample found (run from a checkout with examples/)")
    args.workdir.mkdir(parents=True, exist_ok=True)
    data = args.workdir / "metadata.csv"
    size = grow(sample, data, args.rows)
    print(f"sample {sample} grown to {args.rows:,} rows, {size / 2**20:,.0f} MiB")
    recipe = args.workdir / "bench.yaml"
    recipe.write_text(
        f"name: bench\noutput_dir: {args.workdir / 'out'}\nsources:\n"
        f"  cord19:\n    loader: cord19\n    path: {data}\n    n: {args.n}\n"
    )

    base_rows, base_s = baseline(data)
    proc = subprocess.run([sys.executable, __file__, "--child", str(recipe)], capture_output=True, text=True)
    if proc.returncode:
        sys.exit(proc.stderr)
    stats = json.loads(proc.stdout.strip().splitlines()[-1])
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024  # Linux: KiB
    rate = stats["read"] / stats["seconds"]
    base_rate = base_rows / base_s
    print(f"baseline csv.reader : {base_rows:,} rows in {base_s:.1f} s = {base_rate:,.0f} rows/s")
    print(
        f"meadow build        : {stats['read']:,} rows in {stats['seconds']:.1f} s = {rate:,.0f} rows/s "
        f"(kept {stats['kept']:,}, dropped {stats['dropped']:,})"
    )
    print(f"ratio build/baseline: {rate / base_rate:.2f}x the rows/s of a bare csv parse")
    print(f"peak RSS (build)    : {peak / 2**20:,.0f} MiB")
    ok = rate >= 20_000 and peak < 2**30
    print(f"goal >= 20,000 rows/s and < 1 GiB: {'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    main()
