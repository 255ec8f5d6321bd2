"""Scale check of `meadow build` on CORD-19: a metadata.csv grown to 1,000,000 rows.

The rows are the real sample's (../shared/fixtures/raw/cord19/metadata.first150.csv, or
examples/cord19/metadata.csv when that is absent), re-keyed so every cord_uid and title
is unique. The whole build (loader, validation, exact dedup, hash-ranked subsample of
n=50,000, outputs) runs in a child process, whose peak RSS is read from the OS. The
baseline, measured in the same run on the same file, is a bare `csv.reader` pass: the
ratio says how much of the build's time is ours on top of parsing.

Goal (issue #3): >= 20,000 rows/s and < 1 GiB peak RSS on the 2-core project machine.

Scaling out (issue #9): ``--workers 1,2`` and ``--executor ray`` add a second recipe, the same
CORD-19 file plus two StackExchange Posts.xml (the real ai and genai samples, rows re-keyed and
repeated to ``--se-rows`` each): three shards. It is built once in one process (the reference),
then with the local executor for each worker count and on a local Ray cluster (2 CPUs, started
and stopped here); each output is checked byte-identical to the reference, and the rows/s, the
speed-up from the first to the last worker count and Ray's time against the local executor
with as many workers are printed as ratios of this one run.

    python bench/build_scale.py [--rows 1000000] [--n 50000] [--workdir /tmp/meadow-bench]
    python bench/build_scale.py --workers 1,2 --executor ray [--se-rows 300000]
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import resource
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SAMPLES = [
    REPO.parent / "shared/fixtures/raw/cord19/metadata.first150.csv",
    REPO / "examples/cord19/metadata.csv",
]
SE_SAMPLES = REPO.parent / "shared/fixtures/raw/stackexchange"
SE_SITES = ("ai.stackexchange.com", "genai.stackexchange.com")
_ID = re.compile(r'\b(Id|ParentId|AcceptedAnswerId)="(\d+)"')
_TITLE = re.compile(r'Title="([^"]*)"')


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


def grow_posts(sample: Path, out: Path, rows: int) -> int:
    """Repeat a Posts.xml's rows to ``rows``, every id (and parent, accepted answer) and title re-keyed."""
    lines = [line for line in sample.read_text(encoding="utf-8-sig").splitlines() if "<row " in line]
    top = max(int(m[2]) for line in lines for m in _ID.finditer(line)) + 1
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", encoding="utf-8") as f:
        f.write('<?xml version="1.0" encoding="utf-8"?>\n<posts>\n')
        for i in range(rows):
            k, line = divmod(i, len(lines))
            row = _ID.sub(lambda m, k=k: f'{m[1]}="{int(m[2]) + k * top}"', lines[line])
            f.write(_TITLE.sub(lambda m, k=k: f'Title="{m[1]} [{k}]"', row) + "\n")
        f.write("</posts>\n")
    return out.stat().st_size


def child(recipe: Path, out: Path, mode: str) -> None:
    from meadow.build import build

    kind, _, arg = mode.partition(":")
    kwargs: dict = {}
    if kind == "local":
        kwargs = {"workers": int(arg)}
    elif kind == "ray":
        kwargs = {"executor": "ray", "address": arg}
    t0 = time.perf_counter()
    result = build(recipe, output_dir=out, progress=False, **kwargs)
    seconds = time.perf_counter() - t0
    srcs = result.manifest.to_json()["sources"].values()
    print(
        json.dumps(
            {
                "seconds": seconds,
                "read": sum(s["read"] for s in srcs),
                "kept": sum(s["sampled"] for s in srcs),
                "dropped": sum(s["dropped_total"] for s in srcs),
                "duplicates": sum(s["duplicates"] for s in srcs),
                "shards": result.manifest.to_json().get("executor", {}).get("shards", 0),
                "peak_self": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                "peak_children": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024,
            }
        )
    )


def run_child(recipe: Path, out: Path, mode: str = "single") -> dict:
    proc = subprocess.run(
        [sys.executable, __file__, "--child", str(recipe), "--child-out", str(out), "--child-mode", mode],
        capture_output=True,
        text=True,
    )
    if proc.returncode:
        sys.exit(proc.stderr)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def scale_out(args: argparse.Namespace, cord: Path) -> None:
    """The sharded builds: one process, the local executor per worker count, Ray; same output."""
    se = []
    for site in SE_SITES:
        sample = next((SE_SAMPLES / site).glob("Posts*.xml"))
        path = args.workdir / "se" / site / "Posts.xml"
        size = grow_posts(sample, path, args.se_rows)
        se.append(path)
        print(f"{sample.name} grown to {args.se_rows:,} rows, {size / 2**20:,.0f} MiB ({site})")
    recipe = args.workdir / "scale.yaml"
    recipe.write_text(
        f"name: scale\nsources:\n  cord19:\n    loader: cord19\n    path: {cord}\n    n: {args.n}\n"
        f"  stackexchange:\n    loader: stackexchange\n    path: {args.workdir / 'se'}/*/Posts.xml\n"
        f"    n: {args.n}\n"
    )
    runs: list[tuple[str, dict, Path]] = []
    ref_out = args.workdir / "scale-single"
    ref = run_child(recipe, ref_out)
    runs.append(("one process (no shards)", ref, ref_out))
    workers = [int(w) for w in args.workers.split(",")] if args.workers else []
    for w in workers:
        out = args.workdir / f"scale-local{w}"
        runs.append((f"local --workers {w}", run_child(recipe, out, f"local:{w}"), out))
    if args.executor == "ray":
        port, ray_bin = _free_port(), Path(sys.executable).with_name("ray")
        subprocess.run(
            [str(ray_bin), "start", "--head", "--num-cpus", "2", "--port", str(port),
             "--node-ip-address", "127.0.0.1", "--include-dashboard", "false", "--disable-usage-stats"],
            check=True, capture_output=True,
        )  # fmt: skip
        try:
            out = args.workdir / "scale-ray"
            runs.append(("ray (2 CPUs)", run_child(recipe, out, f"ray:127.0.0.1:{port}"), out))
        finally:
            subprocess.run([str(ray_bin), "stop", "--force"], capture_output=True)
    reference = (ref_out / "scale" / "merged_medical_meadow.json").read_bytes()
    print(
        f"\n{'build':<26} {'rows':>11} {'s':>7} {'rows/s':>9} {'shards':>6} {'driver RSS':>10}  same output"
    )
    for label, r, out in runs:
        same = (out / "scale" / "merged_medical_meadow.json").read_bytes() == reference
        print(
            f"{label:<26} {r['read']:>11,} {r['seconds']:>7.1f} {r['read'] / r['seconds']:>9,.0f} "
            f"{r['shards']:>6} {r['peak_self'] / 2**20:>7,.0f} MiB  {'yes' if same else 'NO'}"
        )
    by = {label: r["seconds"] for label, r, _ in runs}
    if len(workers) >= 2:
        a, b = f"local --workers {workers[0]}", f"local --workers {workers[-1]}"
        print(f"speed-up {workers[0]} -> {workers[-1]} workers: {by[a] / by[b]:.2f}x")
    if workers:
        first = by[f"local --workers {workers[0]}"] / by[runs[0][0]]
        print(f"local --workers {workers[0]} vs one process: {first:.2f}x the time")
    if args.executor == "ray" and workers:
        w = workers[-1]
        print(f"ray vs local --workers {w}: {by['ray (2 CPUs)'] / by[f'local --workers {w}']:.2f}x the time")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
    ap.add_argument("--workers", help="comma-separated worker counts for the sharded builds, e.g. 1,2")
    ap.add_argument("--executor", choices=["local", "ray"], default="local")
    ap.add_argument("--se-rows", type=int, default=300_000, help="rows of each grown Posts.xml")
    ap.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--child-out", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--child-mode", default="single", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.child_out, args.child_mode)
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
    stats = run_child(recipe, args.workdir / "out")
    peak = stats["peak_self"]  # Linux: ru_maxrss in KiB
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
    if args.workers or args.executor == "ray":
        scale_out(args, data)


if __name__ == "__main__":
    main()
