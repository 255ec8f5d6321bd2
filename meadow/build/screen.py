"""The per-record pass of a source: loader drops counted, records ranked and screened.

The one place these run, whether a source streams through the build (meadow.build.select) or a
shard of it through a worker (meadow.build.shards): both give the same verdicts on the same records.
A record is ranked (a seeded hash of its id, meadow.build.sample), then goes through the source's
quality steps in order (its filters, then the benchmark check: each a meadow.quality.base.Step);
the first rejection is counted here, the rest compete for the source's sample.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from meadow.build.sample import content_key, rank
from meadow.build.stats import SourceStats
from meadow.errors import InputError, MeadowError
from meadow.quality import filters
from meadow.quality.base import Rejection, Step
from meadow.records import Passage, Record
from meadow.schemas.quality import FilterSettings
from meadow.sources import Drop

OnRecord = Callable[[int, "int | None", Record], None]
"""Called with (rank, content key or None, record) for a record that passed the screen."""
OnPassage = Callable[[int, Passage], None]
"""Called with (rank, passage) for a passage to rephrase."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """A record ``Screen.check`` turned down: its rank and the step's rejection."""

    rank: int
    rejection: Rejection


@dataclass
class Screen:
    """A source's per-record steps before its sample: the rank, the quality steps in order, then
    the content key for exact dedup (``dedup``). Each step comes with the build step its time
    counts in (``filter`` or ``decontaminate``); ``seconds`` adds it up until ``flush``."""

    seed: int
    steps: list[tuple[str, Step]]
    dedup: bool
    seconds: Counter[str] = field(default_factory=Counter)

    @classmethod
    def of(cls, seed: int, filter_settings: FilterSettings, decon: Step | None, dedup: bool) -> Screen:
        steps: list[tuple[str, Step]] = [("filter", f) for f in filters.build_filters(filter_settings)]
        if decon is not None:
            steps.append(("decontaminate", decon))
        return cls(seed, steps, dedup)

    def flush(self, st: SourceStats) -> float:
        """Add the time spent in the steps since the last flush to ``st``; returns it."""
        spent = sum(self.seconds.values())
        st.step_seconds.update(self.seconds)
        self.seconds.clear()
        return spent

    def check(self, record: Record) -> tuple[int, int | None] | Verdict:
        """``(rank, content key)`` of a record that may compete for the sample, or why not."""
        rank_ = rank(self.seed, record.id)
        clock = time.perf_counter
        for timed, step in self.steps:
            t0 = clock()
            rejection = step(record)
            self.seconds[timed] += clock() - t0
            if rejection is not None:
                return Verdict(rank_, rejection)
        key = content_key(record.instruction, record.input, record.output) if self.dedup else None
        return rank_, key


def reject(st: SourceStats, name: str, verdict: Verdict, record: Record) -> None:
    """Count a record the screen turned down (and, if contaminated, its contamination.jsonl line)."""
    r = verdict.rejection
    st.drop_record(r.reason, record, verdict.rank, r.detail)
    if r.benchmark is not None:
        st.contaminated_by(r.benchmark, {"source": name, **(r.report or {})})


def drop_or_fail(st: SourceStats, item: Drop, name: str, on_error: str) -> None:
    """Count a loader's drop; a malformed unit under ``on_error: fail`` stops the build."""
    if item.malformed and on_error == "fail":
        raise MeadowError(f"{item.where}: {item.detail or item.reason} (source {name!r}; on_error: fail)")
    st.drop(item)


def scan(
    name: str,
    loader: str,
    items: Iterator[Record | Passage | Drop],
    screen: Screen,
    st: SourceStats,
    on_error: str,
    on_record: OnRecord,
    on_passage: OnPassage,
    bar: Any = None,
    handoff: str = "sample",
) -> None:
    """The pass over a loader's items: drops counted, records screened, the rest handed on.

    Used for a whole source by the build and for one shard by meadow.build.shards. The time spent
    is added to ``st.step_seconds``: the screen's steps under their names, the callbacks under
    ``handoff`` (the sample; a shard's file), the rest (reading, parsing, validating) under ``load``.
    """
    clock = time.perf_counter
    started, handed = clock(), 0.0
    try:
        for item in items:
            st.read += 1
            if bar is not None and not st.read % 1024:
                bar.update(1024)
            if isinstance(item, Drop):
                drop_or_fail(st, item, name, on_error)
                continue
            st.yielded += 1
            if isinstance(item, Passage):
                t0 = clock()
                on_passage(rank(screen.seed, item.id), item)
                handed += clock() - t0
            else:
                verdict = screen.check(item)
                if isinstance(verdict, Verdict):
                    reject(st, name, verdict, item)
                else:
                    t0 = clock()
                    on_record(verdict[0], verdict[1], item)
                    handed += clock() - t0
    except InputError as err:
        raise MeadowError(f"{err} (source {name!r}, loader {loader!r})") from None
    finally:
        screened = screen.flush(st)
        st.step_seconds["load"] += clock() - started - screened - handed
        st.step_seconds[handoff] += handed
