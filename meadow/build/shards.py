"""Sharded, resumable reading of a build's sources: the map phase of `meadow build --workers N`.

A shard is one input file of one source, or all of a source's files when its loader is not
separable by file. In a worker (meadow.build.executors), a shard's loader runs on its file(s), and every
item goes through the same pass as in a single-process build (``meadow.build.scan``: loader drops
counted, records ranked, quality-filtered and checked against the benchmarks by ``Screen``). What
is left, the screened records with their rank and content key and the passages with their rank,
is written in file order to ``<work>/<source>/<index>.pkl.zst``; the shard's counts (rows read,
drops by reason with their first examples, the lowest-ranked dropped records, contamination rows
and hits) go into ``<index>.done``. Both are written to a temporary name and renamed, the
``.done`` marker last, so a shard is either finished or absent; a killed worker leaves nothing
that a rerun would trust.

The reduce phase stays in the driver (meadow.build): per source in recipe order, the shards'
counts are merged and their records offered to the source's sample in shard order, which is
file order. The sample, exact dedup against earlier sources, rephrasing, near dedup and the
outputs then run exactly as in a single-process build, so the outputs are byte-identical
whatever the executor and the number of workers. The shards' counts add up (meadow.build.stats):
a reason's examples are its lowest-ranked, so they are the same however the shards are taken.

Why whole files, not byte ranges. Loaders keep state within a file (StackExchange pairs answers
with the questions before them in one Posts.xml; an OpenAssistant tree is one JSON line but a
message's parent must come first), and CSV rows may hold quoted newlines, so no byte offset can
be trusted to start a row without reading from the start. Splitting line-oriented JSONL by byte
ranges would be safe for MedQA only; it is not done.

Loaders whose state spans files are read as one shard (``per_file=False`` in their registration):
CORD-19 (a ``cord_uid`` seen in an earlier metadata.csv is a duplicate; a large one is read in
spans, below), PubMed causal language and health advice (a sentence already labelled in an
earlier file), USMLE (questions, solutions and images in separate files; test-only anyway).

Spans of a large file. A splittable loader (``SourceSpec.splittable``: CORD-19) whose files hold
at least ``SPLIT_BYTES`` is read in as many shards as the executor runs at once, each a span of
rows (meadow.sources.Span, from a file and line to another): every shard parses the file from
its start, keeping the state the rows before its span leave (the ``cord_uid`` values claimed),
and validates, filters and decontaminates its own rows only, which is most of the work. The
spans follow each other in file order, so the driver offers their records to the sample in the
same order as a single-process build.

Resuming. ``.done`` holds the shard's fingerprint: the meadow version, the loader and its
options, the source's filters, the seed, dedup, on_error, the decontamination settings and the
benchmark files (path, size, mtime), and the shard's input files (path, size, mtime_ns). A rerun
reuses a shard whose marker and output exist and whose fingerprint is unchanged, and redoes the
others. A finished build removes the work folder unless asked to keep it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import pickle
import shutil
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backports import zstd
from tqdm import tqdm

from meadow import __version__, sources
from meadow.build.executors import Executor
from meadow.build.screen import Screen, scan
from meadow.build.select import PassageRow, RecordRow, Shard, on_error_of
from meadow.build.stats import SourceStats
from meadow.io import atomic_file
from meadow.quality.decontaminate import DeconCounts
from meadow.records import Passage, Record
from meadow.schemas.quality import FilterSettings
from meadow.schemas.recipe import Recipe
from meadow.schemas.run import RunOptions
from meadow.sources import Span

log = logging.getLogger(__name__)

DATA_SUFFIX = ".pkl.zst"
DONE_SUFFIX = ".done"
BATCH = 2048
"""Rows pickled together in a shard file."""
SPLIT_BYTES = 64 * 2**20
"""A splittable source (meadow.sources.SourceSpec.splittable) whose files hold at least this many
bytes is read in spans, one shard per task the executor runs at once."""
SAMPLE_BYTES = 2**20
"""How much of each file ``spans`` reads to estimate its bytes per line."""


@dataclass(frozen=True)
class ShardJob:
    """One shard to read: everything a worker needs, picklable, no open handles."""

    source: str
    index: int
    loader: str
    options: dict[str, Any]
    paths: tuple[str, ...]
    base: str
    filters: FilterSettings
    seed: int
    dedup: bool
    on_error: str
    fingerprint: str
    out: str
    """The shard's path without suffix: ``<work>/<source>/<index>``."""
    span: Span | None = None
    """The rows of ``paths`` this shard yields (a splittable loader's); None: all of them."""

    @property
    def done_path(self) -> Path:
        return Path(self.out + DONE_SUFFIX)

    @property
    def data_path(self) -> Path:
        return Path(self.out + DATA_SUFFIX)


def plan_source(
    name: str,
    entry: Any,
    paths: list[Path],
    recipe: Any,
    on_error: str,
    decon: Any,
    work: Path,
    base: Path,
    parts: int = 1,
) -> list[ShardJob]:
    """The shards of one source: a file each when its loader is separable by file, ``parts`` spans
    of its rows when it is splittable and large (``SPLIT_BYTES``), else one."""
    spec = sources.get(entry.loader)
    groups: list[tuple[list[Path], Span | None]]
    if spec.per_file:
        groups = [([p], None) for p in paths]
    elif spec.splittable and parts > 1 and sum(p.stat().st_size for p in paths) >= SPLIT_BYTES:
        groups = [(paths, cut) for cut in spans(paths, parts)]
    else:
        groups = [(paths, None)]
    settings = {
        "meadow": __version__,
        "loader": entry.loader,
        "options": entry.parsed_options().model_dump(mode="json"),
        "filters": recipe.source_filters(name).model_dump(mode="json"),
        "seed": recipe.seed,
        "dedup": recipe.dedup,
        "on_error": on_error,
        "decontaminate": _decon_fingerprint(decon),
    }
    jobs = []
    for i, (group, span) in enumerate(groups):
        inputs = []
        for p in group:
            st = p.stat()
            inputs.append([str(p), st.st_size, st.st_mtime_ns])
        blob = json.dumps({**settings, "inputs": inputs, "span": span}, sort_keys=True, default=str)
        jobs.append(
            ShardJob(
                source=name,
                index=i,
                loader=entry.loader,
                options=entry.options,
                paths=tuple(str(p) for p in group),
                base=f"{base}{os.sep}",
                filters=recipe.source_filters(name),
                seed=recipe.seed,
                dedup=recipe.dedup == "exact",
                on_error=on_error,
                fingerprint=hashlib.sha256(blob.encode()).hexdigest(),
                out=str(work / name / f"{i:05d}"),
                span=span,
            )
        )
    return jobs


def spans(paths: list[Path], parts: int) -> list[Span]:
    """About ``parts`` spans of the rows of ``paths`` (meadow.sources.Span), of about the same
    bytes each, in order and together covering every row once. Where a span starts is estimated
    from the bytes per line of the first ``SAMPLE_BYTES`` of its file: an estimate only moves work
    from one span to the next, it cannot lose or repeat a row."""
    sizes = [p.stat().st_size for p in paths]
    total = sum(sizes)
    per_line: dict[int, float] = {}  # file index -> its estimated bytes per line
    cuts: list[tuple[int, int]] = [(0, 0)]
    for k in range(1, parts):
        target, before = total * k // parts, 0
        for index, (path, size) in enumerate(zip(paths, sizes, strict=True)):
            if target < before + size:
                if index not in per_line:
                    with open(path, "rb") as f:
                        head = f.read(SAMPLE_BYTES)
                    per_line[index] = len(head) / max(1, head.count(b"\n"))
                cut = (index, 2 + int((target - before) / per_line[index]))  # line 1 is the header
                if cut > cuts[-1]:
                    cuts.append(cut)
                break
            before += size
    cuts.append((len(paths), 0))
    return list(zip(cuts, cuts[1:], strict=False))


def _decon_fingerprint(decon: Any) -> Any:
    if decon is None:
        return None
    files = []
    for name, b in sorted(decon.index.benchmarks.items()):
        for p in b.files:
            st = Path(p).stat()
            files.append([name, str(p), st.st_size, st.st_mtime_ns])
    return {"settings": decon.settings.model_dump(mode="json"), "files": files}


def finished(job: ShardJob) -> dict[str, Any] | None:
    """The ``.done`` record of a shard finished with the same fingerprint, or None."""
    try:
        done = json.loads(job.done_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if done.get("fingerprint") != job.fingerprint or not job.data_path.is_file():
        return None
    return done


def run_shard(job: ShardJob, decon: Any = None) -> dict[str, Any]:
    """Read one shard and write its output and completion marker; returns the marker's content.

    ``decon`` is this worker's own copy of the build's Decontaminator: its counters start empty
    and what it found is returned for the driver to merge.
    """
    t0 = time.perf_counter()
    if decon is not None:
        decon = decon.fresh()
    spec = sources.get(job.loader)
    st = SourceStats(loader=job.loader, n="all", base=job.base, seed=job.seed)
    if decon is not None:
        st.contaminated = Counter()
    screen = Screen.of(job.seed, job.filters, decon, job.dedup)
    counts = {"records": 0, "passages": 0}
    batch: list[RecordRow | PassageRow] = []
    with atomic_file(job.data_path, "wb") as raw, zstd.open(raw, "wb", level=1) as f:

        def add(row: RecordRow | PassageRow) -> None:
            batch.append(row)
            if len(batch) >= BATCH:
                pickle.dump(batch, f, protocol=pickle.HIGHEST_PROTOCOL)
                batch.clear()

        def on_record(rank_: int, key: int | None, r: Record) -> None:
            counts["records"] += 1
            add(RecordRow.of(rank_, key, r))

        def on_passage(rank_: int, p: Passage) -> None:
            counts["passages"] += 1
            add(PassageRow.of(rank_, p))

        options = spec.options.model_validate(job.options)
        paths = [Path(p) for p in job.paths]
        scan(
            job.source,
            job.loader,
            spec.load(paths, options) if job.span is None else spec.load(paths, options, span=job.span),
            screen,
            st,
            job.on_error,
            on_record,
            on_passage,
            handoff="load",  # a shard's file: part of reading the source in the map phase
        )
        if batch:
            pickle.dump(batch, f, protocol=pickle.HIGHEST_PROTOCOL)
    result = {
        "fingerprint": job.fingerprint,
        "source": job.source,
        "index": job.index,
        "inputs": list(job.paths),
        **counts,
        "stats": st.to_json(),
        **(decon.counts.to_json() if decon is not None else {"found": None, "decon_records": None}),
        "seconds": round(time.perf_counter() - t0, 3),
    }
    with atomic_file(job.done_path) as f:  # the completion marker: written last
        json.dump(result, f)
    return result


def rows(job: ShardJob) -> Iterator[RecordRow | PassageRow]:
    """A finished shard's rows, in file order."""
    with zstd.open(job.data_path, "rb") as f:
        while True:
            try:
                batch = pickle.load(f)
            except EOFError:
                return
            yield from batch


def remove_work(work: Path) -> None:
    """Remove a finished build's work folder (and ``.work`` when nothing else is left in it)."""
    shutil.rmtree(work, ignore_errors=True)
    with contextlib.suppress(OSError):
        work.parent.rmdir()


class Sharded:
    """The map phase of a sharded build: every source's shards planned and started at once
    (finished ones from an earlier run reused), their results handed to ``run_source`` per
    source in recipe order, shard by shard in file order."""

    def __init__(
        self,
        recipe: Recipe,
        plan: dict[str, list[Path]],
        options: RunOptions,
        decon: Any,
        work: Path,
        base: Path,
        executor: Executor,
    ):
        self.recipe, self.decon, self.work, self.progress = recipe, decon, work, options.progress
        self.runner = executor
        self.jobs = {
            name: plan_source(
                name,
                recipe.sources[name],
                paths,
                recipe,
                on_error_of(recipe, recipe.sources[name], options.strict),
                decon,
                work,
                base,
                parts=executor.slots(),
            )
            for name, paths in plan.items()
        }
        self.done = {(j.source, j.index): finished(j) for js in self.jobs.values() for j in js}
        todo = [j for js in self.jobs.values() for j in js if self.done[(j.source, j.index)] is None]
        total = sum(len(js) for js in self.jobs.values())
        reused = total - len(todo)
        if reused:
            log.info("%d of %d shards reused from %s", reused, total, work)
        decon_ref = executor.share(decon)
        self.results = executor.call(
            run_shard, [(j, decon_ref) for j in todo], [f"shard {j.source}/{j.index}" for j in todo]
        )
        self.info = {**executor.info(), "shards": total, "shards_reused": reused}

    def parts(self, name: str) -> Iterator[Shard]:
        jobs = self.jobs[name]
        bar = tqdm(
            desc=f"{name}: shards", total=len(jobs), disable=None if self.progress else True, leave=False
        )
        try:
            for job in jobs:
                done = self.done[(job.source, job.index)] or next(self.results)
                if self.decon is not None:
                    self.decon.counts += DeconCounts.from_json(done)
                bar.update()
                yield SourceStats.from_json(done["stats"]), rows(job)
        finally:
            bar.close()
