"""Decontamination: find training records that hold a question of an evaluation benchmark.

The recipe names the benchmarks (``benchmarks:``, each a kind, a path or glob and optionally ``fetch``
entries) and the matching (``decontaminate:``). Each benchmark question is read by its kind in
meadow.benchmarks, as ``meadow eval`` reads it (the question and its options' text), and indexed by
meadow.quality.ngram_index: its word n-grams (normalised by meadow.text), those of templates left out.

A record (instruction, input and output, read as one text) is contaminated when it holds enough of a
question: at least ``coverage`` (0.4) of the question's informative words inside n-grams the two
share (rare words weigh more; the stock words of English and of exam questions nothing), or a field
that is the whole question. It is credited to the question it covers most; the build counts as
found every question it holds, and contamination.jsonl gives the coverage and the matched spans.
The verdict depends on the record and the benchmarks alone: not on row order, shards, or Python's
hash seed.
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from meadow.benchmarks import read as read_benchmark
from meadow.errors import InputError, MeadowError
from meadow.quality.base import Rejection
from meadow.quality.ngram_index import Hit, Index
from meadow.records import Record
from meadow.schemas.benchmark import BenchmarkEntry
from meadow.schemas.quality import DecontaminateSettings
from meadow.schemas.recipe import benchmark_paths

REPORT_TEXT_CHARS = 300
"""How much of a record's instruction, of the question and of each matched span contamination.jsonl
shows."""
# --------------------------------------------------------------------------- loading benchmarks


@dataclass
class Benchmark:
    """The questions of one recipe benchmark: (id, question, options' texts) each."""

    name: str
    kind: str
    files: list[Path]
    questions: list[tuple[str, str, list[str]]]
    """Every question with a text, scored by ``meadow eval`` or not."""
    removed: dict[str, int] = field(default_factory=dict)
    unscored: int = 0
    """How many of ``questions`` ``meadow eval`` does not score (``removed`` says why)."""


def load(name: str, entry: BenchmarkEntry, base: Path, strict: bool = False) -> Benchmark:
    """Read a benchmark's questions with its kind's loader; errors name the benchmark and file.
    Questions the kind leaves out of scoring (USMLE image questions...) are indexed too: they can
    leak all the same. ``strict``: a malformed question is an error, not a counted removal."""
    files = benchmark_paths(name, entry, base)
    try:
        loaded = read_benchmark(entry.kind, files, entry.parsed_options(), label=repr(name), strict=strict)
    except InputError as err:  # it names the file and line
        raise MeadowError(f"benchmark {name!r}: {err}") from None
    removed = dict(sorted(loaded.removed.items()))
    return Benchmark(name, entry.kind, files, loaded.texts(), removed, unscored=len(loaded.unscored))


@dataclass
class DeconCounts:
    """What a build found in the benchmarks; counts of shards add up (``a + b``), as datatrove's
    ``utils/stats.py`` do."""

    records: Counter[str] = field(default_factory=Counter)
    """benchmark -> records removed"""
    found: dict[str, set[int]] = field(default_factory=dict)
    """benchmark -> the questions matched (positions in the index)"""

    @classmethod
    def empty(cls, names: Iterable[str]) -> DeconCounts:
        return cls(Counter(), {name: set() for name in names})

    def __add__(self, other: DeconCounts) -> DeconCounts:
        found = {name: set(items) for name, items in self.found.items()}
        for name, items in other.found.items():
            found.setdefault(name, set()).update(items)
        return DeconCounts(self.records + other.records, found)

    def to_json(self) -> dict[str, Any]:
        """The fields of a shard's ``.done`` record (meadow.build.shards)."""
        return {"found": {k: sorted(v) for k, v in self.found.items()}, "decon_records": dict(self.records)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DeconCounts:
        return cls(Counter(data["decon_records"]), {k: set(v) for k, v in data["found"].items()})


class Decontaminator:
    """The index of a recipe's benchmarks and what the build found with it (``counts``)."""

    def __init__(self, settings: DecontaminateSettings, benchmarks: list[Benchmark]):
        self.settings = settings
        self.index = Index(settings, benchmarks)
        self.counts = DeconCounts.empty(b.name for b in benchmarks)

    def fresh(self) -> Decontaminator:
        """A copy with the same index and counts at zero: a shard worker's, merged back by the driver."""
        other = copy.copy(self)
        other.counts = DeconCounts.empty(self.index.benchmarks)
        return other

    def check(self, record: Record) -> Hit | None:
        """The question ``record`` is credited to (None: it holds none), counted: the record under
        that question's benchmark, and every question it holds as found."""
        found = self.index.find(record)
        if found is None:
            return None
        self.counts.records[found.hit.benchmark] += 1
        for idx in found.items:
            self.counts.found[self.index.items[idx].benchmark].add(idx)
        return found.hit

    def __call__(self, record: Record) -> Rejection | None:
        """The quality step protocol (meadow.quality.base): a record holding a benchmark question
        is rejected as ``contaminated``, with its contamination.jsonl line."""
        hit = self.check(record)
        if hit is None:
            return None
        report = self.row("", record, hit)
        del report["source"]
        return Rejection("contaminated", f"{hit.benchmark}:{hit.item_id}", hit.benchmark, report)

    def row(self, source: str, record: Record, hit: Hit) -> dict[str, Any]:
        """One line of contamination.jsonl."""
        return {
            "source": source,
            "id": record.id,
            "instruction": record.instruction[:REPORT_TEXT_CHARS],
            "benchmark": hit.benchmark,
            "item_id": hit.item_id,
            "match": hit.match,
            "coverage": hit.coverage,
            "spans": [
                {"start": sp.start, "end": sp.end, "text": sp.text[:REPORT_TEXT_CHARS]} for sp in hit.spans
            ],
            "question": hit.question[:REPORT_TEXT_CHARS],
        }

    def report(self, input_info: Callable[[Path], dict[str, Any]]) -> dict[str, Any]:
        """The manifest's ``decontamination``; ``input_info`` describes a file (path, bytes, sha256)."""
        s = self.settings
        out: dict[str, Any] = {
            "ngram": s.ngram,
            "short_ngram": s.short_ngram,
            "short_below": s.short_below,
            "exact": s.exact,
            "common": s.common,
            "coverage": s.coverage,
            "min_words": s.min_words,
            "indexed_ngrams": len(self.index.long.first) + len(self.index.short.first),
            "common_ngrams_skipped": self.index.skipped_common,
            "benchmarks": {},
        }
        for name, b in self.index.benchmarks.items():
            inputs = [input_info(p) for p in b.files]
            out["benchmarks"][name] = {
                "kind": b.kind,
                "paths": [i["path"] for i in inputs],
                "inputs": inputs,
                "questions": len(b.questions),
                **({"unscored": b.unscored} if b.unscored else {}),
                **({"removed": b.removed} if b.removed else {}),
                "hits": len(self.counts.found[name]),
                "records": self.counts.records[name],
            }
        return out


def from_recipe(
    settings: DecontaminateSettings | None,
    entries: dict[str, BenchmarkEntry],
    base: Path,
    strict: bool = False,
) -> Decontaminator | None:
    """The decontaminator a recipe asks for, its benchmarks loaded; None when it names none.
    ``strict`` (the build's ``--strict``): a malformed benchmark question stops the build."""
    settings = settings or DecontaminateSettings()
    names = list(entries) if settings.benchmarks is None else settings.benchmarks
    if not names:
        return None
    return Decontaminator(settings, [load(n, entries[n], base, strict) for n in names])
