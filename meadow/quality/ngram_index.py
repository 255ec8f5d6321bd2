"""The n-gram index of benchmark questions, and the rule that says a record holds one.

Each question is read as its normalised words (meadow.text): the question's own, then its
options'. Indexed are the hashes of their word n-grams: ``ngram`` (13) words, or ``short_ngram``
(8) for questions of fewer than ``short_below`` words. An n-gram found in more than ``common``
distinct questions is a template, not evidence of one question: it is not indexed.

The rule is **coverage**, as the Llama 2 report counts a sample contaminated by the share of its
tokens inside long matched n-grams. For each question that shares an indexed n-gram with a record
(instruction, input and output read as one text; every hash hit is confirmed on the words, so the
result does not depend on Python's hash salt), the question's words inside a shared n-gram are
covered. Words weigh by their rarity among the distinct benchmark questions, ``log(1 + N / df)``,
and the stock words of English and of exam questions (``STOCK_WORDS``) nothing; so do words that no
indexed n-gram holds. Coverage is the weight of the covered words over the weight of all: of the
question, or of the question with its options where that is higher, or where the question has fewer
than ``min_words`` informative words ("Which of the following is incorrect?" is known by its
options). A record holds a question when the coverage is at least ``coverage`` (0.4), or when one of
its fields (instruction, input, output, instruction + input) is the whole question (``exact``, for a
question with an informative word).

So a long vignette is found from its last 60%, while a stock stem, a vignette opening, a vital-signs
line or an option list that a record shares with a question covers little or none of its weight. A
record that holds several questions is credited to the one it covers most (then the one it covers
most with the options, then the first in recipe and file order): a stem shared by two questions goes
to the one whose closing question and options the record holds.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np

from meadow.records import Record
from meadow.schemas.quality import DecontaminateSettings
from meadow.text import words


class Questions(Protocol):
    """A benchmark's questions as the index reads them (meadow.quality.decontaminate.Benchmark)."""

    name: str
    questions: list[tuple[str, str, list[str]]]
    """(id, question, options' texts) each."""


_FUNCTION_WORDS = """
about above after again against all also am an and any are as at be because been before being below
between both but by can could did do does doing down during each either every few for from further had
has have having he her here hers herself him himself his how if in into is it its itself just may me
might more must my myself neither no nor not now of off on once one only or other our ours out over own
same shall she should so some such than that the their theirs them themselves then there these they this
those through to too under until up upon very was we were what when where whereas whether which while who
whom whose why will with within without would you your yours
"""
_EXAM_WORDS = """
answer answers best correct describe described describes except false following incorrect least likely
most none option options question questions regarding statement statements true ii iii iv vi vii viii ix
"""
STOCK_WORDS = frozenset(_FUNCTION_WORDS.split() + _EXAM_WORDS.split())
"""Words that are no evidence of a question on their own: they count neither way in coverage."""

_PRIME = 0x100000001B3
"""The multiplier of the polynomial n-gram hash (odd, so invertible modulo 2**64)."""


class _Hasher:
    """64-bit polynomial hashes of every word n-gram of a text, computed with numpy.

    ``h(i) = sum_j w[i+j] * P**(n-1-j) mod 2**64`` over the words' own hashes ``w``; with prefix sums of
    ``w[t] * P**-t`` every n-gram costs the same few vector operations, whatever ``n``. Word hashes
    are Python's (salted per process): the index and the records are hashed in the same process, and
    every hit is confirmed on the words, so results do not depend on the salt.
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

    def prefix(self, ws: Sequence[str]) -> np.ndarray:
        """The prefix sums of ``w[t] * P**-t`` over ``ws`` (``len(ws) + 1`` values): every n-gram
        size is read off the same sums (``ngrams``), so a text's words are hashed once."""
        self._powers(len(ws) + 1)
        w = np.fromiter(map(hash, ws), dtype=np.int64, count=len(ws)).view(np.uint64)
        prefix = np.zeros(len(ws) + 1, dtype=np.uint64)
        np.cumsum(w * self._down[: len(ws)], out=prefix[1:])
        return prefix

    def ngrams(self, prefix: np.ndarray, n: int) -> np.ndarray:
        """The hash of each n-gram of the words behind ``prefix``, in order (empty where there are
        fewer than n words)."""
        count = len(prefix) - n
        if count <= 0:
            return np.zeros(0, dtype=np.uint64)
        return (prefix[n:] - prefix[:count]) * self._up[n - 1 : n - 1 + count]

    def array(self, ws: Sequence[str], n: int) -> np.ndarray:
        """The hash of each n-gram of ``ws``, in order (empty where ``ws`` has fewer than n words)."""
        if len(ws) < n:
            return np.zeros(0, dtype=np.uint64)
        return self.ngrams(self.prefix(ws), n)

    def __call__(self, ws: Sequence[str], n: int) -> list[int]:
        """``array`` as Python ints (the keys of the index's tables)."""
        return self.array(ws, n).tolist()


@dataclass(frozen=True)
class Span:
    """A matched stretch of a question: words ``start`` to ``end`` of its normalised words (the
    question's, then its options')."""

    start: int
    end: int
    text: str


@dataclass(frozen=True)
class Hit:
    """The question a record is credited to: which, how, how much of it, and where."""

    benchmark: str
    item_id: str
    match: Literal["exact", "ngram"]
    """``exact``: a field of the record is the whole question; ``ngram``: shared n-grams."""
    coverage: float
    """The share of the question's informative words the record holds (1 for ``exact``)."""
    spans: tuple[Span, ...]
    """The stretches of the question and its options that the record holds, in order."""
    question: str


@dataclass(frozen=True)
class Match:
    """What ``Index.find`` found in a record: the question it is credited to (``hit``), and every
    question it holds (positions in ``Index.items``)."""

    hit: Hit
    items: frozenset[int]


@dataclass
class _Item:
    benchmark: str
    id: str
    question: str  # as published (for the report)
    words: tuple[str, ...]  # the question's normalised words, then its options'
    asked: int  # how many of ``words`` are the question's
    n: int  # the size of its n-grams
    hashes: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.uint64))
    """The hash of each n-gram of ``words``; those of templates (not indexed) are 0."""
    weights: np.ndarray = field(default_factory=lambda: np.zeros(0))
    """Per word: what it weighs in coverage (0: a stock word, or in no indexed n-gram)."""

    def covered(self, ws: Sequence[str], at: dict[int, int], keys: np.ndarray) -> np.ndarray | None:
        """Which of its words lie inside an indexed n-gram that ``ws`` holds (``at``: hash -> where
        ``ws`` holds it; ``keys``: those hashes, sorted); None where none does."""
        slot = np.minimum(np.searchsorted(keys, self.hashes), len(keys) - 1)
        pos = np.flatnonzero(keys[slot] == self.hashes)
        if not len(pos):
            return None
        where = np.fromiter(map(at.__getitem__, self.hashes[pos].tolist()), dtype=np.int64, count=len(pos))
        # Confirm on the words (not a hash collision) a run of n-grams at a time: consecutive here
        # and in the record.
        cut = np.flatnonzero((np.diff(pos) != 1) | (np.diff(where) != 1)) + 1
        n, covered = self.n, np.zeros(len(self.words), dtype=bool)
        for a, b in zip([0, *cut.tolist()], [*cut.tolist(), len(pos)], strict=True):
            p, w, length = int(pos[a]), int(where[a]), int(pos[b - 1] - pos[a]) + n
            if tuple(ws[w : w + length]) == self.words[p : p + length]:
                covered[p : p + length] = True
                continue
            for p, w in zip(pos[a:b].tolist(), where[a:b].tolist(), strict=True):  # one by one
                if tuple(ws[w : w + n]) == self.words[p : p + n]:
                    covered[p : p + n] = True
        return covered if covered.any() else None

    def coverage(self, covered: np.ndarray, min_words: int) -> tuple[float, float]:
        """(coverage, coverage of the question with its options) of a mask of covered words.

        Coverage is the question's own, or the one with its options where that is higher, or where
        the question has fewer than ``min_words`` informative words (it is known by its options).
        """
        got = np.where(covered, self.weights, 0.0)
        whole = self.weights.sum()
        with_options = float(got.sum() / whole) if whole else 0.0
        own = self.weights[: self.asked]
        if np.count_nonzero(own) < min_words:
            return with_options, with_options
        return max(float(got[: self.asked].sum() / own.sum()), with_options), with_options

    def spans(self, covered: np.ndarray) -> tuple[Span, ...]:
        edges = np.flatnonzero(np.diff(np.concatenate([[0], covered.astype(np.int8), [0]])))
        return tuple(
            Span(int(a), int(b), " ".join(self.words[a:b]))
            for a, b in zip(edges[::2], edges[1::2], strict=True)
        )


@dataclass
class _Table:
    """n-gram hash -> the questions holding it: the first, and the rare others.

    ``probe``: the hashes of every ``n - stride + 1``-gram of the table's questions. An n-gram a
    record shares with a question holds one of them that starts at a multiple of ``stride`` in the
    record, so a record none of whose grams at those starts is a probe holds no n-gram of the table:
    ``stride`` times fewer lookups (each a miss in a large table) for the records that share none,
    which are almost all.
    """

    n: int
    first: dict[int, int] = field(default_factory=dict)
    others: dict[int, list[int]] = field(default_factory=dict)
    stride: int = field(init=False)
    probe: set[int] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.stride = max(1, self.n // 3)

    @property
    def probe_n(self) -> int:
        """The size of the probe's grams: an n-gram holds one at every stride of its starts."""
        return self.n - self.stride + 1

    def add(self, h: int, idx: int) -> None:
        if self.first.setdefault(h, idx) != idx:
            self.others.setdefault(h, []).append(idx)


class Index:
    """Hashed word n-grams of benchmark questions, with the questions' words to confirm and measure
    every match."""

    def __init__(self, settings: DecontaminateSettings, benchmarks: Iterable[Questions]):
        self.settings = settings
        self.benchmarks = {b.name: b for b in benchmarks}
        self.items: list[_Item] = []
        self.whole: dict[tuple[str, ...], list[int]] = {}  # normalised question -> the items asking it
        self.long = _Table(settings.ngram)
        self.short = _Table(settings.short_ngram)
        self._hash = _Hasher()
        for b in self.benchmarks.values():
            for item_id, question, options in b.questions:
                asked = words(question)
                ws = asked + words(" ".join(options))
                n = settings.ngram if len(asked) >= settings.short_below else settings.short_ngram
                idx = len(self.items)
                self.items.append(_Item(b.name, item_id, question, ws, len(asked), n))
                if settings.exact and any(w not in STOCK_WORDS for w in asked):
                    self.whole.setdefault(asked, []).append(idx)
        # Over the distinct questions (a copy of a question counts once): how many hold each
        # n-gram (a short n-gram counts in long questions too), and each word.
        distinct = list(dict.fromkeys(item.words for item in self.items))
        sizes = sorted({settings.ngram, settings.short_ngram})
        counts: dict[int, Counter[int]] = {n: Counter() for n in sizes}
        for ws in distinct:
            for n in sizes:
                counts[n].update(set(self._hash(ws, n)))
        common = {n: {h for h, c in counts[n].items() if c > settings.common} for n in sizes}
        held = Counter(w for ws in distinct for w in set(ws))
        weight = {w: math.log1p(len(distinct) / c) for w, c in held.items() if w not in STOCK_WORDS}
        skipped: set[tuple[int, int]] = set()
        for idx, item in enumerate(self.items):
            table = self.long if item.n == settings.ngram else self.short
            prefix = self._hash.prefix(item.words)  # the words hashed once for the n-grams and probes
            table.probe.update(self._hash.ngrams(prefix, table.probe_n).tolist())
            hashes = self._hash.ngrams(prefix, item.n).tolist()
            inside = np.zeros(len(item.words) + 1, dtype=np.int32)  # +1 from an n-gram's start, -1 after it
            for at, h in enumerate(hashes):
                if h in common[item.n]:
                    skipped.add((item.n, h))
                    hashes[at] = 0
                else:
                    table.add(h, idx)
                    inside[at] += 1
                    inside[at + item.n] -= 1
            item.hashes = np.array(hashes, dtype=np.uint64)
            own = np.fromiter((weight.get(w, 0.0) for w in item.words), dtype=float, count=len(item.words))
            item.weights = np.where(np.cumsum(inside[:-1]) > 0, own, 0.0)
        self.skipped_common = len(skipped)

    def __reduce__(self) -> tuple[Any, ...]:
        # The tables hold Python's word hashes, salted per process: a worker process given this
        # index (meadow build --workers, Ray) rebuilds them from the questions, in a few ms.
        return (Index, (self.settings, list(self.benchmarks.values())))

    def __len__(self) -> int:
        return len(self.items)

    def match(self, record: Record) -> Hit | None:
        """The question ``record`` is credited to, or None."""
        found = self.find(record)
        return None if found is None else found.hit

    def find(self, record: Record) -> Match | None:
        """The question ``record`` is credited to and every question it holds, or None."""
        instruction, input_, output = words(record.instruction), words(record.input), words(record.output)
        ws = instruction + input_ + output
        covered: dict[int, np.ndarray] = {}  # question -> its words the record holds
        exact: set[int] = set()
        for field_ in (instruction, input_, output, instruction + input_) if self.whole else ():
            exact.update(self.whole.get(field_, ()))
        for idx in exact:
            covered[idx] = np.arange(len(self.items[idx].words)) < self.items[idx].asked
        prefix = None
        for table in (self.long, self.short):
            if not table.first or len(ws) < table.n:
                continue
            if prefix is None:
                prefix = self._hash.prefix(ws)  # the words hashed once for both n-gram sizes
            if table.stride > 1:
                probes = self._hash.ngrams(prefix, table.probe_n)[:: table.stride]
                if table.probe.isdisjoint(probes.tolist()):
                    continue
            hashes = self._hash.ngrams(prefix, table.n).tolist()
            if table.first.keys().isdisjoint(hashes):
                continue
            at: dict[int, int] = {}  # a shared n-gram's hash -> where the record holds it
            for i, h in enumerate(hashes):
                if h in table.first:
                    at.setdefault(h, i)
            keys = np.sort(np.fromiter(at, dtype=np.uint64, count=len(at)))
            candidates = {table.first[h] for h in at}
            candidates.update(idx for h in at.keys() & table.others.keys() for idx in table.others[h])
            for idx in candidates:
                mask = self.items[idx].covered(ws, at, keys)
                if mask is not None:
                    covered[idx] = mask | covered[idx] if idx in covered else mask
        scores = {}
        for idx, mask in covered.items():
            own, with_options = self.items[idx].coverage(mask, self.settings.min_words)
            if idx in exact:
                own = 1.0
            if own >= self.settings.coverage:
                scores[idx] = (own, with_options)
        if not scores:
            return None
        best = min(scores, key=lambda i: (-scores[i][0], -scores[i][1], i))
        item = self.items[best]
        hit = Hit(
            item.benchmark,
            item.id,
            "exact" if best in exact else "ngram",
            round(scores[best][0], 4),
            item.spans(covered[best]),
            item.question,
        )
        return Match(hit, frozenset(scores))
