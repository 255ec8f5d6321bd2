"""Decontamination: find training records that hold a question of an evaluation benchmark.

The recipe names the benchmarks (``benchmarks:``, each a kind, a path or glob and optionally ``fetch``
entries) and the matching (``decontaminate:``). Each benchmark question is read by its kind in
meadow.benchmarks, as ``meadow eval`` reads it (the question and its options' text), and normalised
(meadow.text: NFKC, lowercase, punctuation to spaces, whitespace collapsed, single letters such as
option letters left out). Indexed are the hashes of its word n-grams: ``ngram`` (13, as in GPT-3's
contamination analysis) words, or ``short_ngram`` (8) for questions of fewer than ``short_below`` words,
so that a short question can still be matched; an n-gram found in more than ``common`` questions (a
template such as "which of the following is the most likely ...") is not indexed. With ``exact``, the
normalised question itself is indexed too.

A record (instruction, input and output, read as one text) is contaminated when one of its n-grams is
indexed, or when its instruction, input, output or instruction + input equals a normalised
question. Hashes are only a first test: every hit is confirmed against the question's text, so the
result does not depend on Python's hash seed, and which question is reported (the first in recipe and
file order) is deterministic.
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from meadow.benchmarks import read as read_benchmark
from meadow.errors import InputError, MeadowError
from meadow.quality.base import Rejection
from meadow.records import Record
from meadow.schemas.benchmark import BenchmarkEntry
from meadow.schemas.quality import DecontaminateSettings
from meadow.schemas.recipe import benchmark_paths
from meadow.text import words

REPORT_TEXT_CHARS = 300
"""How much of a record's instruction and of the question contamination.jsonl shows."""
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


# --------------------------------------------------------------------------- the index


@dataclass(frozen=True)
class Hit:
    """A record found in a benchmark: which question, how, and the text that matched."""

    benchmark: str
    item_id: str
    match: Literal["exact", "ngram"]
    text: str
    """The matched n-gram (normalised), or the normalised question for an exact match."""
    question: str


@dataclass
class _Item:
    benchmark: str
    id: str
    question: str  # the question as published (for the report)
    norm: str  # normalised question and options, space-joined


_PRIME = 0x100000001B3
"""The multiplier of the polynomial n-gram hash (odd, so invertible modulo 2**64)."""


class _Hasher:
    """64-bit polynomial hashes of every word n-gram of a text, computed with numpy.

    ``h(i) = sum_j w[i+j] * P**(n-1-j) mod 2**64`` over the words' own hashes ``w``; with prefix sums of
    ``w[t] * P**-t`` every n-gram costs the same few vector operations, whatever ``n``. Word hashes
    are Python's (salted per process): the index and the records are hashed in the same process, and
    every hit is confirmed on the text, so results do not depend on the salt.
    """

    def __init__(self) -> None:
        self._up = np.ones(1, dtype=np.uint64)  # P**t
        self._down = np.ones(1, dtype=np.uint64)  # P**-t

    def _powers(self, m: int) -> None:
        if m <= len(self._up):
            return
        m = max(m, 2 * len(self._up))
        one = np.ones(1, dtype=np.uint64)
        for name, base in (("_up", _PRIME), ("_down", pow(_PRIME, -1, 1 << 64))):
            setattr(self, name, np.concatenate([one, np.cumprod(np.full(m - 1, base, dtype=np.uint64))]))

    def __call__(self, ws: Sequence[str], n: int) -> list[int]:
        """The hash of each n-gram of ``ws``, in order (empty where ``ws`` has fewer than n words)."""
        count = len(ws) - n + 1
        if count <= 0:
            return []
        self._powers(len(ws) + 1)
        w = np.fromiter(map(hash, ws), dtype=np.int64, count=len(ws)).view(np.uint64)
        prefix = np.zeros(len(ws) + 1, dtype=np.uint64)
        np.cumsum(w * self._down[: len(ws)], out=prefix[1:])
        return ((prefix[n:] - prefix[:count]) * self._up[n - 1 : n - 1 + count]).tolist()


@dataclass
class _Table:
    """n-gram hash -> the questions holding it: the first, and the rare others."""

    n: int
    first: dict[int, int] = field(default_factory=dict)
    others: dict[int, list[int]] = field(default_factory=dict)

    def add(self, h: int, idx: int) -> None:
        if self.first.setdefault(h, idx) != idx:
            self.others.setdefault(h, []).append(idx)

    def remove(self, h: int) -> None:
        del self.first[h]
        self.others.pop(h, None)

    def candidates(self, h: int) -> tuple[int, ...]:
        idx = self.first.get(h)
        return () if idx is None else (idx, *self.others.get(h, ()))


class Index:
    """Hashed word n-grams of benchmark questions, with the questions to confirm every hit."""

    def __init__(self, settings: DecontaminateSettings, benchmarks: Iterable[Benchmark]):
        self.settings = settings
        self.benchmarks = {b.name: b for b in benchmarks}
        self.items: list[_Item] = []
        self.whole: dict[str, list[int]] = {}  # normalised question -> the items asking it
        self.long = _Table(settings.ngram)
        self.short = _Table(settings.short_ngram)
        self.skipped_common = 0
        self._hash = _Hasher()
        counts: dict[int, Counter[int]] = {settings.ngram: Counter(), settings.short_ngram: Counter()}
        every: list[tuple[str, ...]] = []
        for b in self.benchmarks.values():
            for item_id, question, options in b.questions:
                question_words = words(question)
                ws = question_words + words(" ".join(options))
                idx = len(self.items)
                self.items.append(_Item(b.name, item_id, question, " ".join(ws)))
                every.append(ws)
                if settings.exact and question_words:
                    self.whole.setdefault(" ".join(question_words), []).append(idx)
                table = self.short if len(question_words) < settings.short_below else self.long
                for h in set(self._hash(ws, table.n)):
                    table.add(h, idx)
        # How many questions hold each indexed n-gram (a short n-gram also counts in long questions).
        for ws in every:
            for table in (self.long, self.short) if self.short.first else (self.long,):
                counts[table.n].update(set(self._hash(ws, table.n)) & table.first.keys())
        for table in (self.long, self.short):
            common = [h for h, c in counts[table.n].items() if c > settings.common]
            self.skipped_common += len(common)
            for h in common:
                table.remove(h)

    def __reduce__(self) -> tuple[Any, ...]:
        # The tables hold Python's word hashes, salted per process: a worker process given this
        # index (meadow build --workers, Ray) rebuilds them from the questions, in a few ms.
        return (Index, (self.settings, list(self.benchmarks.values())))

    def __len__(self) -> int:
        return len(self.items)

    def _holding(self, table: _Table, h: int, ws: Sequence[str], at: int) -> Iterator[int]:
        """The questions that hold the n-gram at ``ws[at:]`` (its hash ``h`` only points to them)."""
        text = f" {' '.join(ws[at : at + table.n])} "
        return (i for i in table.candidates(h) if text in f" {self.items[i].norm} ")

    def _hit(self, idx: int, match: Literal["exact", "ngram"], text: str) -> Hit:
        item = self.items[idx]
        return Hit(item.benchmark, item.id, match, text, item.question)

    def _fields(self, record: Record) -> tuple[tuple[str, ...], ...]:
        instruction, input_, output = words(record.instruction), words(record.input), words(record.output)
        return instruction, input_, output, instruction + input_

    def match(self, record: Record) -> Hit | None:
        """The first benchmark question ``record`` holds, or None."""
        fields = self._fields(record)
        for ws in fields if self.whole else ():
            same = self.whole.get(" ".join(ws)) if ws else None
            if same:
                return self._hit(same[0], "exact", " ".join(ws))
        ws = fields[3] + fields[2]
        for table in (self.long, self.short):
            if not table.first:
                continue
            hashes = self._hash(ws, table.n)
            if table.first.keys().isdisjoint(hashes):
                continue
            for at, h in enumerate(hashes):
                idx = next(self._holding(table, h, ws, at), None)
                if idx is not None:
                    return self._hit(idx, "ngram", " ".join(ws[at : at + table.n]))
        return None

    def matched_items(self, record: Record) -> set[int]:
        """Every question ``record`` holds (for counting the questions found; slower than ``match``)."""
        fields = self._fields(record)
        found: set[int] = set()
        for ws in fields if self.whole else ():
            found.update(self.whole.get(" ".join(ws), ()) if ws else ())
        ws = fields[3] + fields[2]
        for table in (self.long, self.short):
            for at, h in enumerate(self._hash(ws, table.n) if table.first else ()):
                if h in table.first:
                    found.update(self._holding(table, h, ws, at))
        return found


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
        hit = self.index.match(record)
        if hit is not None:
            self.counts.records[hit.benchmark] += 1
            for idx in self.index.matched_items(record):
                self.counts.found[self.index.items[idx].benchmark].add(idx)
        return hit

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
            "ngram": hit.text,
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
