"""Rephrasing throughput: 1,000 passages against a local OpenAI-compatible server with 50 ms latency.

Measures, in one run on the same passages:
- throughput at concurrency 1 and at concurrency 32 (ratio; goal: the runner keeps 32
  requests in flight, so close to 32x),
- a cached rebuild (every answer from the SQLite cache, no request sent) against the first
  build (goal: >= 100x faster).

The server is the test suite's fake (tests/convert/fake_openai.py) on 127.0.0.1: it answers
every request correctly after sleeping 50 ms, like a fast remote model.

    python bench/rephrase.py [--passages 1000] [--latency 0.05]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "convert"))

from fake_openai import FakeOpenAI  # noqa: E402

from meadow.convert.runner import SyncRephraser  # noqa: E402
from meadow.records import Passage, Record  # noqa: E402
from meadow.schemas.llm import LLMSettings  # noqa: E402


def passages(n: int) -> list[Passage]:
    return [
        Passage(
            text=f"Front: First-line treatment of condition {i}\nBack: Drug {i}",
            source="anki/bench",
            id=f"anki/bench:{i}",
            task="flashcard",
        )
        for i in range(n)
    ]


def timed(server: FakeOpenAI, cache: Path, items: list[Passage], concurrency: int) -> tuple[float, int, int]:
    s = LLMSettings(
        backend="openai",
        model="bench",
        base_url=server.url,
        concurrency=concurrency,
        cache=str(cache),
        timeout=30,
    )
    with SyncRephraser(s, s.cache) as r:
        t0 = time.perf_counter()
        results = r.convert(items)
        seconds = time.perf_counter() - t0
        assert all(isinstance(x, Record) for x in results), "every answer should be valid"
        return seconds, r.stats.requests, r.stats.cache_hits


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--passages", type=int, default=1000)
    ap.add_argument("--latency", type=float, default=0.05)
    args = ap.parse_args()
    items = passages(args.passages)
    with tempfile.TemporaryDirectory() as tmp, FakeOpenAI(delay=args.latency) as server:
        t1, req1, _ = timed(server, Path(tmp) / "c1.sqlite", items, 1)
        t32, req32, _ = timed(server, Path(tmp) / "c32.sqlite", items, 32)
        tc, reqc, hits = timed(server, Path(tmp) / "c32.sqlite", items, 32)
    n = args.passages
    print(f"{n} passages, server latency {args.latency * 1000:.0f} ms")
    print(f"concurrency  1: {t1:7.2f} s  {n / t1:8.1f} passages/s  ({req1} requests)")
    print(f"concurrency 32: {t32:7.2f} s  {n / t32:8.1f} passages/s  ({req32} requests)")
    print(f"cached rebuild: {tc:7.2f} s  {n / tc:8.1f} passages/s  ({reqc} requests, {hits} cache hits)")
    print(f"ratio concurrency 32 / 1       : {t1 / t32:6.1f}x")
    print(f"ratio first build (c=32) / cached: {t32 / tc:6.1f}x")
    print(f"ratio first build (c=1) / cached : {t1 / tc:6.1f}x")
    print(
        f"goal cached rebuild >= 100x faster than the first build: "
        f"{'met' if t1 / tc >= 100 else 'NOT met'} at c=1, {'met' if t32 / tc >= 100 else 'NOT met'} at c=32"
    )


if __name__ == "__main__":
    main()
