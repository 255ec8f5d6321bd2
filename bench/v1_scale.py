"""The whole v1 build at full size: `meadow build recipes/v1.yaml` measured end to end (issue #15).

1. Inputs: bench/v1_inputs.py writes a synthetic v1 input tree at medAlpaca's sizes from the real
   fixture text, each source in its raw published format (see its docstring for what and how).
   The tree is cached in WORKDIR/inputs-v<version>-s<scale>/ (the generator's VERSION and the
   scale are the key), so a rerun does not rebuild it.
2. Recipe: a copy of recipes/v1.yaml in which only the `path:` values (sources and benchmarks),
   the llm `base_url`, `cache` and `concurrency` (32) are replaced. Below scale 1 the sources' `n`
   are scaled too, so sampling and rephrasing keep their share of the work (at scale 1 the recipe's
   own n are used).
3. LLM: the test suite's OpenAI-compatible fake server (tests/convert/fake_openai.py) in this
   process on 127.0.0.1, every answer valid, after --latency (50 ms); it stops with the bench.
4. Builds, each `python -m meadow.cli build` in its own child process run from the repository root
   (with PYTHONPATH set to it, so this checkout's meadow is what runs, workers included): cold
   (empty answer cache) and warm (every answer cached), in one process and with --workers 2. Wall
   time and peak RSS from os.wait4 (ru_maxrss: the largest single process of the build's tree),
   CPU seconds of the tree; steps and peak RSS of the driver and the workers from the manifest.
   Every output's merged_medical_meadow.json must be byte-identical to the first build's.

Goals (ratios of this run): warm one-process <= 5 min and <= 4 GiB; cold <= 1.5 x (requests x
latency / 32 + warm time); --workers 2 faster than one process.

    python bench/v1_scale.py --scale 0.05          # quick: 5% of every source
    python bench/v1_scale.py                       # full size (the figure that counts)
    python bench/v1_scale.py --builds warm1,warm2  # a subset (warm builds fill the cache first)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "bench"), str(REPO / "tests" / "convert")]

import fake_openai  # noqa: E402
import v1_inputs  # noqa: E402
from fake_openai import FakeOpenAI  # noqa: E402


class _Server(fake_openai.ThreadingHTTPServer):
    request_queue_size = 256
    """socketserver's default listen backlog is 5: at 32 requests in flight, connections beyond it were
    refused and retried by the client after a backoff (seconds), which a real server does not cause."""


fake_openai.ThreadingHTTPServer = _Server  # what FakeOpenAI serves with, in this process only

STEPS = ("load", "filter", "decontaminate", "sample", "rephrase", "near_dedup", "write")
BUILDS = {"cold1": (False, None), "warm1": (True, None), "cold2": (False, 2), "warm2": (True, 2)}
"""name -> (answer cache filled beforehand, --workers)."""


def inputs(workdir: Path, scale: float, regenerate: bool) -> tuple[Path, dict[str, Any]]:
    """The input tree for ``scale``, generated once per generator version."""
    tree = workdir / f"inputs-v{v1_inputs.VERSION}-s{scale:g}"
    done = tree / ".done.json"
    if done.is_file() and not regenerate:
        print(f"inputs: cached in {tree}")
        return tree, json.loads(done.read_text())
    shutil.rmtree(tree, ignore_errors=True)
    for old in workdir.glob("inputs-v*"):  # trees of other generator versions are stale: free their space
        if not old.name.startswith(f"inputs-v{v1_inputs.VERSION}-"):
            shutil.rmtree(old, ignore_errors=True)
    t0 = time.perf_counter()
    made = v1_inputs.generate(tree, scale)
    made["seconds"] = round(time.perf_counter() - t0, 1)
    made["bytes"] = sum(p.stat().st_size for p in tree.rglob("*") if p.is_file())
    done.write_text(json.dumps(made, indent=1))
    print(f"inputs: generated in {made['seconds']:.0f} s, {made['bytes'] / 2**20:,.0f} MiB in {tree}")
    return tree, made


def recipe_copy(tree: Path, out: Path, scale: float, url: str, cache: Path, concurrency: int) -> Path:
    """recipes/v1.yaml with its paths in ``tree``, the fake server and its own answer cache."""
    recipe = yaml.safe_load((REPO / "recipes/v1.yaml").read_text())

    def moved(p: str) -> str:
        assert p.startswith("data/raw/"), p
        return str(tree / p.removeprefix("data/raw/"))

    for entry in [*recipe["sources"].values(), *recipe["benchmarks"].values()]:
        p = entry["path"]
        entry["path"] = [moved(x) for x in p] if isinstance(p, list) else moved(p)
        if scale != 1 and isinstance(entry.get("n"), int):
            entry["n"] = max(1, round(entry["n"] * scale))
    recipe["llm"].update(base_url=url, cache=str(cache), concurrency=concurrency)
    out.write_text(yaml.safe_dump(recipe, sort_keys=False, allow_unicode=True))
    return out


def run_build(recipe: Path, out: Path, log: Path, workers: int | None) -> dict[str, Any]:
    """One build in a child process: wall, CPU and peak RSS of its process tree, and its manifest."""
    cmd = [sys.executable, "-m", "meadow.cli", "build", str(recipe), "--output-dir", str(out), "--quiet"]
    if workers:
        cmd += ["--workers", str(workers)]
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "OPENAI_API_KEY": "bench",
        "NO_PROXY": "127.0.0.1,localhost",
    }
    shutil.rmtree(out, ignore_errors=True)
    with open(log, "w") as f:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=f, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        sys.exit(f"build failed ({' '.join(cmd)}), exit {proc.returncode}:\n{log.read_text()[-4000:]}")
    manifest = json.loads((out / "medical_meadow_v1/manifest.json").read_text())
    llm = [s["llm"] for s in manifest["sources"].values() if s.get("llm")]
    return {
        "wall": wall,
        "cpu": usage.ru_utime + usage.ru_stime,
        "tree_peak_mib": usage.ru_maxrss / 1024,
        "driver_peak_mib": manifest.get("peak_rss_mib"),
        "workers_peak_mib": (manifest.get("executor") or {}).get("workers_peak_rss_mib"),
        "steps": manifest.get("steps") or {},
        "sources": {
            k: {
                "seconds": s["seconds"],
                "steps": s.get("steps") or {},
                "read": s["read"],
                "kept": s["sampled"],
            }
            for k, s in manifest["sources"].items()
        },
        "requests": sum(x["requests"] for x in llm),
        "cache_hits": sum(x["cache_hits"] for x in llm),
        "read": manifest["totals"]["read"],
        "records": manifest["totals"]["records"],
        "contaminated": sum(
            sum((s.get("contaminated") or {}).values()) for s in manifest["sources"].values()
        ),
        "near_duplicates": manifest["totals"].get("near_duplicates"),
        "output": (out / "medical_meadow_v1/merged_medical_meadow.json").read_bytes(),
    }


def checked_meadow() -> str:
    """Where the child processes import meadow from: this checkout, not another install."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    where = subprocess.run(
        [sys.executable, "-c", "import meadow; print(meadow.__file__)"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if not Path(where).is_relative_to(REPO):
        sys.exit(f"the builds would import meadow from {where}, not from {REPO}")
    return where


def report(runs: dict[str, dict[str, Any]], latency: float, concurrency: int, made: dict[str, Any]) -> None:
    labels = {
        "cold1": "cold, one process",
        "warm1": "warm, one process",
        "cold2": "cold, --workers 2",
        "warm2": "warm, --workers 2",
    }
    head = f"{'build':<20} {'wall s':>7} {'CPU s':>7} {'peak MiB':>9} {'driver':>7} {'workers':>7}"
    head += f" {'requests':>8}"
    print("\n" + head + "".join(f" {s:>9}" for s in STEPS) + "  same output")
    first = next(iter(runs.values()))["output"]
    for name, r in runs.items():
        cells = "".join(f" {r['steps'].get(s, 0):>9.1f}" for s in STEPS)
        workers = f"{r['workers_peak_mib']:,.0f}" if r["workers_peak_mib"] else "-"
        print(
            f"{labels[name]:<20} {r['wall']:>7.1f} {r['cpu']:>7.1f} {r['tree_peak_mib']:>9,.0f} "
            f"{r['driver_peak_mib'] or 0:>7,.0f} {workers:>7} {r['requests']:>8,}{cells}  "
            f"{'yes' if r['output'] == first else 'NO'}"
        )
    print("(steps: the manifest's seconds; with --workers they add up the worker processes' seconds)")
    r = next(iter(runs.values()))
    print(
        f"\nread {r['read']:,} rows, wrote {r['records']:,} records; contaminated {r['contaminated']:,} "
        f"(planted MedQA test questions: {made.get('PLANTED')}); near duplicates {r['near_duplicates']:,}"
    )
    where = runs.get("warm1") or r
    print(
        "\nper source (seconds by step, " + ("warm, one process" if "warm1" in runs else "first build") + "):"
    )
    srcs = sorted(where["sources"].items(), key=lambda kv: -kv[1]["seconds"])
    print(f"{'source':<30} {'read':>10} {'kept':>8} {'s':>7}" + "".join(f" {s:>9}" for s in STEPS))
    for name, s in srcs:
        print(
            f"{name:<30} {s['read']:>10,} {s['kept']:>8,} {s['seconds']:>7.1f}"
            + "".join(f" {s['steps'].get(k, 0):>9.1f}" for k in STEPS)
        )
    total = sum(where["steps"].values()) or 1
    top = max(where["steps"], key=where["steps"].get) if where["steps"] else "-"
    print(f"dominant step: {top} ({where['steps'].get(top, 0) / total:.0%} of the steps' {total:,.0f} s)")

    print("\ngoals (ratios of this run):")
    if "warm1" in runs:
        w = runs["warm1"]
        print(
            f"  warm one process: {w['wall'] / 300:.2f}x of 5 min, {w['tree_peak_mib'] / 4096:.2f}x of 4 GiB"
        )
    for cold, warm in (("cold1", "warm1"), ("cold2", "warm2")):
        if cold in runs and warm in runs:
            c = runs[cold]
            bound = 1.5 * (c["requests"] * latency / concurrency + runs[warm]["wall"])
            print(
                f"  {labels[cold]}: {c['wall'] / bound:.2f}x of 1.5 x ({c['requests']:,} requests x "
                f"{latency * 1000:.0f} ms / {concurrency} + warm {runs[warm]['wall']:.0f} s) = {bound:.0f} s"
            )
    for a, b in (("warm1", "warm2"), ("cold1", "cold2")):
        if a in runs and b in runs:
            print(f"  {labels[b]} vs {labels[a]}: {runs[b]['wall'] / runs[a]['wall']:.2f}x the time")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, default=1.0, help="fraction of every source's size (default 1)")
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/meadow-v1-scale"))
    ap.add_argument("--builds", default="cold1,warm1,cold2,warm2", help=f"which of {', '.join(BUILDS)}")
    ap.add_argument("--latency", type=float, default=0.05, help="the fake server's seconds per answer")
    ap.add_argument("--concurrency", type=int, default=32, help="the recipe's llm concurrency")
    ap.add_argument("--regenerate", action="store_true", help="write the inputs again even if cached")
    args = ap.parse_args()
    builds = args.builds.split(",")
    if unknown := set(builds) - set(BUILDS):
        sys.exit(f"unknown builds {sorted(unknown)}; choose from {', '.join(BUILDS)}")
    args.workdir.mkdir(parents=True, exist_ok=True)
    print(f"meadow from {checked_meadow()}")
    tree, made = inputs(args.workdir, args.scale, args.regenerate)
    cache = args.workdir / "llm.sqlite"
    runs: dict[str, dict[str, Any]] = {}
    with FakeOpenAI(delay=args.latency) as server:
        recipe = recipe_copy(tree, args.workdir / "v1.yaml", args.scale, server.url, cache, args.concurrency)
        for name in builds:
            warm, workers = BUILDS[name]
            if not warm:
                for p in cache.parent.glob(cache.name + "*"):  # the cache and its -wal/-shm files
                    p.unlink()
            elif not cache.exists():
                print("warm build asked with no answer cache: filling it with a cold build first")
                run_build(recipe, args.workdir / "out-fill", args.workdir / "fill.log", None)
            print(f"{name}: building ...", flush=True)
            t_server = time.process_time()
            runs[name] = run_build(
                recipe, args.workdir / f"out-{name}", args.workdir / f"{name}.log", workers
            )
            runs[name]["server_cpu"] = time.process_time() - t_server
            print(
                f"{name}: {runs[name]['wall']:.1f} s, fake server CPU {runs[name]['server_cpu']:.1f} s",
                flush=True,
            )
    report(runs, args.latency, args.concurrency, made)
    results = {k: {x: y for x, y in v.items() if x != "output"} for k, v in runs.items()}
    path = args.workdir / f"results-s{args.scale:g}.json"
    path.write_text(json.dumps({"scale": args.scale, "inputs": made, "builds": results}, indent=1))
    print(f"\nfigures written to {path}")


if __name__ == "__main__":
    main()
