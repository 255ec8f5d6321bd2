"""One source from its screened records to what the build keeps of it.

``run_source`` streams a source through its loader (or takes the shards workers read, meadow.build.
shards) into its sample: exact dedup against the sample and against what earlier sources kept,
the LLM rephrasing of its passages in windows (only as many as the sample can still take), then
near dedup against every record kept before. `meadow build` runs it for every source in recipe
order; `meadow convert` runs it for the passage sources only.
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

from tqdm import tqdm

from meadow import sources
from meadow.build.sample import Sample
from meadow.build.screen import Screen, Verdict, drop_or_fail, reject, scan
from meadow.build.stats import SourceStats
from meadow.quality.near_dedup import NearDedupIndex
from meadow.records import Passage, Record
from meadow.schemas.recipe import Recipe, SourceEntry
from meadow.sources import Drop

log = logging.getLogger(__name__)


class RecordRow(NamedTuple):
    """A screened record as a shard stores it: made a Record again only if the sample keeps it."""

    rank: int
    key: int | None
    id: str
    instruction: str
    input: str
    output: str
    source: str
    meta: dict[str, Any]

    @classmethod
    def of(cls, rank_: int, key: int | None, r: Record) -> RecordRow:
        return cls(rank_, key, r.id, r.instruction, r.input, r.output, r.source, r.meta)

    def record(self) -> Record:
        return Record(
            instruction=self.instruction,
            input=self.input,
            output=self.output,
            source=self.source,
            id=self.id,
            meta=self.meta,
        )


class PassageRow(NamedTuple):
    """A passage to rephrase as a shard stores it."""

    rank: int
    id: str
    text: str
    source: str
    task: str
    meta: dict[str, Any]

    @classmethod
    def of(cls, rank_: int, p: Passage) -> PassageRow:
        return cls(rank_, p.id, p.text, p.source, p.task, p.meta)

    def passage(self) -> Passage:
        return Passage(text=self.text, source=self.source, id=self.id, task=self.task, meta=self.meta)


Shard = tuple[SourceStats, Iterator[RecordRow | PassageRow]]
"""What a worker read of one shard: its counts, and its screened rows in file order."""


class Rephrasing:
    """The LLM step, started on the first passage a build meets (most builds never need it)."""

    def __init__(self, recipe: Recipe, base: Path):
        self.settings = recipe.llm
        cache = Path(self.settings.cache)
        self.cache_path = cache if cache.is_absolute() else base / cache
        self._runner: Any = None
        self.executor: Any = None
        self.work: Path | None = None

    def spread(self, executor: Any, work: Path) -> None:
        """Rephrase on ``executor``'s workers (meadow.convert.distributed), chunk caches in ``work``;
        not with a token or dollar budget, which the driver keeps to itself."""
        s = self.settings
        if s.budget_tokens is None and s.budget_usd is None:
            self.executor, self.work = executor, work

    def get(self) -> Any:
        if self._runner is None:
            from meadow.convert.runner import SyncRephraser

            self._runner = SyncRephraser(self.settings, str(self.cache_path))
        return self._runner

    def info(self) -> dict[str, Any] | None:
        if self._runner is None:
            return None
        s = self.settings
        return {
            "backend": self._runner.backend.identity,
            "settings": s.model_dump(mode="json", exclude={"cache", "replay"}),
            "replay": s.replay,
        }

    def __enter__(self) -> Rephrasing:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._runner is not None:
            self._runner.close()


def on_error_of(recipe: Recipe, entry: SourceEntry, strict: bool) -> str:
    """What a malformed row does in this source: the source's own ``on_error``, else the recipe's;
    ``--strict`` makes it fail."""
    return "fail" if strict else (entry.on_error or recipe.on_error)


def run_source(
    name: str,
    recipe: Recipe,
    paths: list[Path],
    st: SourceStats,
    taken: dict[int, str],
    rephrasing: Rephrasing,
    *,
    on_error: str,
    decon: Any = None,
    near: NearDedupIndex | None = None,
    shards: Iterable[Shard] | None = None,
    progress: bool = True,
) -> list[Record]:
    """Stream one source into its sample; ``taken`` maps content kept by earlier sources to them.

    Passages are ranked like records and rephrased lowest rank first, only as many as the
    sample can still take, so a source subsampled to n costs about n LLM answers, not one
    per passage read.

    Every record (read or rephrased) first goes through the source's quality steps (its filters,
    then with ``decon`` the benchmark check); one that fails is dropped (``filter_<name>``,
    ``contaminated``) before it competes for the sample, so neither depends on row order.

    ``shards``: the source was read by workers (meadow.build.shards); each shard's counts and its
    screened rows, in file order, replace the loader pass. The sample sees the same records in
    the same order, so the outcome is the same.
    """
    entry = recipe.sources[name]
    screen = Screen.of(recipe.seed, recipe.source_filters(name), decon, recipe.dedup == "exact")
    if decon is not None:
        st.contaminated = Counter()
    n = None if entry.n == "all" else entry.n
    if near is not None and n is not None and recipe.near_dedup is not None:
        n = math.ceil(n * (1 + recipe.near_dedup.oversample))  # room to replace near duplicates
    sample: Sample[Record | RecordRow] = Sample(n, taken)
    passages: list[tuple[int, str, Passage]] = []

    def admit(rank_: int, key: int | None, id_: str, item: Record | RecordRow) -> None:
        outcome = sample.offer(rank_, id_, key, item)
        if outcome == "duplicate":
            st.duplicates += 1
            st.duplicate_of[taken.get(key, name) if key is not None else name] += 1
        elif outcome == "duplicate_id":
            st.drop(Drop("duplicate_id", id_, "an id already in this source's sample"))

    def offer(item: Record) -> None:
        verdict = screen.check(item)
        if isinstance(verdict, Verdict):
            reject(st, name, verdict, item)
        else:
            admit(verdict[0], verdict[1], item.id, item)

    def drop(item: Drop) -> None:
        drop_or_fail(st, item, name, on_error)

    if shards is None:
        spec = sources.get(entry.loader)
        # disable=None: bars only on a terminal, never in logs or CI output.
        bar = tqdm(desc=name, unit=" rows", disable=None if progress else True, leave=False, mininterval=0.5)
        try:
            scan(
                name,
                entry.loader,
                spec.load(paths, entry.parsed_options()),
                screen,
                st,
                on_error,
                lambda rank_, key, item: admit(rank_, key, item.id, item),
                lambda rank_, item: passages.append((rank_, item.id, item)),
                bar,
            )
        finally:
            bar.update(st.read - bar.n)
            bar.close()
    else:
        for part, rows in shards:
            st += part
            t0 = time.perf_counter()
            for row in rows:
                if isinstance(row, RecordRow):
                    admit(row.rank, row.key, row.id, row)  # made a Record only if it is kept
                else:
                    passages.append((row.rank, row.id, row.passage()))
            st.step_seconds["sample"] += time.perf_counter() - t0
    if passages:
        t0 = time.perf_counter()
        _rephrase(name, passages, sample, rephrasing, st, offer, drop, progress)
        # the rephrased records' screening counts under its steps, the rest is the LLM's
        screened = screen.flush(st)
        st.step_seconds["rephrase"] += time.perf_counter() - t0 - screened
    st.unique = st.read - sum(st.dropped.values()) - st.duplicates
    st.contamination.sort(key=lambda row: (row["id"], row["benchmark"], row["item_id"]))
    entries = [(r, i, k, x.record() if isinstance(x, RecordRow) else x) for r, i, k, x in sample.ranked()]
    if near is not None:
        t0 = time.perf_counter()
        entries = _near_dedup(name, entry, entries, near, st, progress)
        st.step_seconds["near_dedup"] += time.perf_counter() - t0
    for _, _, key, _ in entries:
        if key is not None:
            taken[key] = name
    return sorted((item for _, _, _, item in entries), key=lambda r: r.id)


def _near_dedup(
    name: str,
    entry: SourceEntry,
    candidates: list[tuple[int, str, int | None, Record]],
    near: NearDedupIndex,
    st: SourceStats,
    progress: bool,
) -> list[tuple[int, str, int | None, Record]]:
    """Keep the source's candidates (lowest rank first) that are no near duplicate of a record
    kept before, up to its ``n`` (meadow/quality/near_dedup.py); count the others."""
    n = None if entry.n == "all" else entry.n
    t0 = time.perf_counter()
    bar = tqdm(
        desc=f"{name}: near dedup",
        total=len(candidates),
        unit=" records",
        disable=None if progress else True,
        leave=False,
        mininterval=0.5,
    )
    try:
        kept, dups = near.select(name, candidates, n, on_batch=bar.update)
    finally:
        bar.close()
    st.near_duplicates = len(dups)
    for d in dups:
        st.near_duplicate_of[d.of_source] += 1
        detail = f"{d.of_id} ({d.of_source}, Jaccard {d.similarity:.2f})"
        st.drop_record("near_duplicate", d.record, d.rank, detail, count=False)
    left_out = st.unique > len(candidates)  # the sample was full: records ranked below it were not looked at
    st.unique -= len(dups)
    if n is not None and len(kept) < n and left_out:
        # the oversample margin ran out: records ranked below it might have filled the sample
        st.near_dedup_short = n - len(kept)
        log.warning(
            "%s: %d of %d records after near dedup: %d near duplicates among the %d candidates "
            "exhausted the oversample margin (raise near_dedup.oversample)",
            name,
            len(kept),
            n,
            len(dups),
            len(candidates),
        )
    near.seconds += time.perf_counter() - t0
    log.debug("%s: %d near duplicates of %d candidates", name, len(dups), len(candidates))
    return kept


def _rephrase(
    name: str,
    passages: list[tuple[int, str, Passage]],
    sample: Sample[Any],
    rephrasing: Rephrasing,
    st: SourceStats,
    offer: Any,
    drop: Any,
    progress: bool,
) -> None:
    """Rephrase the source's passages lowest rank first, in windows as large as the room left in
    its sample (at least the backend's concurrency), until the sample is full of better-ranked
    records; each answer is offered to the sample like a record read."""
    from meadow.convert.runner import ConvertStats, Rejected

    runner = rephrasing.get()
    runner.rephraser.stats = ConvertStats()  # this source's own accounting
    passages.sort(key=lambda p: (p[0], p[1]))
    bar = tqdm(desc=f"{name}: rephrasing", unit=" passages", disable=None if progress else True, leave=False)
    pos = 0
    try:
        while pos < len(passages):
            room = None if sample.n is None else sample.n - len(sample)
            if room == 0 and not sample.would_admit(passages[pos][0], passages[pos][1]):
                break  # every passage left ranks below the full sample
            size = len(passages) - pos if room is None else max(room, rephrasing.settings.concurrency)
            ranked = passages[pos : pos + size]
            window = [p for _, _, p in ranked]
            pos += len(window)
            if rephrasing.executor is not None:
                results = _rephrase_spread(name, window, rephrasing, runner, bar)
            else:
                results = runner.convert(window, on_done=lambda: _tick(bar, runner.stats))
            for (rank_, _, _), result in zip(ranked, results, strict=True):
                if isinstance(result, Rejected) and result.record is not None:  # kept for review
                    st.drop_record(result.reason, result.record, rank_, result.detail)
                elif isinstance(result, Drop):
                    drop(result)
                else:
                    offer(result)
    finally:
        bar.close()
        stats = runner.stats
        st.llm = {
            **stats.to_json(),
            "not_rephrased": len(passages) - pos,
            "samples": {
                "accepted": [{k: v for k, v in e.items() if k != "_order"} for e in stats.accepted_samples],
                "rejected": [{k: v for k, v in e.items() if k != "_order"} for e in stats.rejected_samples],
            },
        }


def _rephrase_spread(
    name: str, window: list[Passage], rephrasing: Rephrasing, runner: Any, bar: Any
) -> list[Any]:
    """One window rephrased in chunks on the build's executor (meadow.convert.distributed)."""
    from meadow.convert import distributed

    assert rephrasing.work is not None
    jobs = distributed.plan(
        rephrasing.settings,
        rephrasing.cache_path,
        rephrasing.work,
        name,
        window,
        rephrasing.executor.slots(),
    )
    return distributed.run_window(
        rephrasing.executor, jobs, runner.cache, runner.stats, on_chunk=lambda k: _tick(bar, runner.stats, k)
    )


def _tick(bar: Any, stats: Any, n: int = 1) -> None:
    bar.update(n)
    bar.set_postfix(
        requests=stats.requests,
        cached=stats.cache_hits,
        failed=sum(stats.failed.values()),
        tokens=stats.prompt_tokens + stats.completion_tokens,
        refresh=False,
    )
