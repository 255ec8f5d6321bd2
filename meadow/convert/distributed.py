"""Rephrasing spread over a build's executor (``--workers N``, ``--executor ray``).

The driver (meadow.build ``_rephrase``) still ranks the passages and picks each window; with an
executor, a window is cut into contiguous chunks, one task per chunk. A task
(``rephrase_chunk``, run on a worker) rephrases its chunk with the recipe's LLM settings through
the same ``Rephraser`` as the driver, reading answers from the build's main cache (read-only)
and then from the chunk's own SQLite file in the build's work folder, where its new answers go
(meadow.convert.cache.ChunkCache). The chunk file is named by the hash of the chunk's content
(backend settings and passages), so a task run again after its worker was killed, or by a rerun
after a failed build, reuses every answer its predecessor paid for.

The driver takes the results in passage order (the output is the same bytes as a one-process
build), merges each chunk file into the main cache (``INSERT OR IGNORE``; the file is then
removed) and the chunk's ``ConvertStats`` into the source's. ``--replay`` works the same way: a
task finds its answers in the main cache, and a miss is an error raised in the driver.

Budgets: a recipe with ``llm.budget_tokens`` or ``llm.budget_usd`` keeps rephrasing in the
driver (one process sees all spending, so the budget stops the run where a one-process build
would); only unbudgeted builds are spread.

Each worker process keeps one backend per LLM settings (a local model is loaded once per
worker, not once per task). SQLite's WAL mode needs a local file system for the main cache:
with Ray workers on other nodes, the cache and ``OUTPUT_DIR/.work/`` must be on a file system
that supports it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from meadow.convert.cache import AnswerCache, ChunkCache
from meadow.convert.runner import ConvertStats, Rephraser, SyncRephraser
from meadow.records import Passage, Record
from meadow.schemas.llm import LLMSettings
from meadow.sources import Drop


@dataclass(frozen=True)
class RephraseJob:
    """One chunk of a window: everything a worker needs, picklable."""

    settings: LLMSettings
    main_cache: str
    out: str
    """The chunk's own cache file."""
    passages: tuple[Passage, ...]


def plan(
    settings: LLMSettings, main_cache: Path, work: Path, source: str, window: list[Passage], slots: int
) -> list[RephraseJob]:
    """Cut ``window`` into at most ``slots`` contiguous chunks of near-equal size."""
    k = max(1, min(slots, len(window)))
    size, extra = divmod(len(window), k)
    base = settings.model_dump(mode="json", exclude={"cache", "replay"})
    jobs, pos = [], 0
    for i in range(k):
        chunk = tuple(window[pos : pos + size + (i < extra)])
        pos += len(chunk)
        blob = json.dumps(
            {"settings": base, "passages": [p.model_dump(mode="json") for p in chunk]}, sort_keys=True
        )
        digest = hashlib.sha256(blob.encode()).hexdigest()[:32]
        out = work / ".rephrase" / f"{source}-{digest}.sqlite"
        jobs.append(RephraseJob(settings, str(main_cache), str(out), chunk))
    return jobs


_RUNNERS: dict[str, SyncRephraser] = {}
"""One event loop and backend per LLM settings in this worker process, kept across tasks."""


def rephrase_chunk(job: RephraseJob) -> tuple[list[Record | Drop], ConvertStats]:
    """Rephrase one chunk (on a worker): its results in passage order and its accounting."""
    Path(job.out).parent.mkdir(parents=True, exist_ok=True)
    cache = ChunkCache(job.main_cache, job.out, replay=job.settings.replay)
    try:
        key = job.settings.model_dump_json()
        runner = _RUNNERS.get(key)
        if runner is None:
            runner = _RUNNERS[key] = SyncRephraser(job.settings, job.out, cache=cache)
        runner.rephraser = Rephraser(runner.backend, cache, job.settings, seed=job.settings.seed)
        results = runner.convert(list(job.passages))
        return results, runner.stats
    finally:
        cache.close()


def run_window(
    executor: Any,
    jobs: list[RephraseJob],
    main: AnswerCache,
    stats: ConvertStats,
    on_chunk: Callable[[int], None] | None = None,
) -> list[Record | Drop]:
    """Run a window's chunks on ``executor``; merge their caches into ``main`` and their counts
    into ``stats``; return the results in passage order."""
    names = [f"rephrasing chunk {Path(j.out).name}" for j in jobs]
    out: list[Record | Drop] = []
    for job, (results, part) in zip(
        jobs, executor.call(rephrase_chunk, [(j,) for j in jobs], names), strict=True
    ):
        main.merge(job.out)
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.remove(job.out + suffix)
        stats.merge(part, job.settings.samples)
        out.extend(results)
        if on_chunk is not None:
            on_chunk(len(job.passages))
    return out
