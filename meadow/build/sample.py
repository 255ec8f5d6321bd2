"""Deterministic, order-independent subsampling with exact-duplicate removal.

Each record gets a rank from a seeded hash of its id; a source keeps the ``n`` lowest
ranks. The same seed and ids give the same sample whatever the file order, and adding
rows to a source only lets a new row in where it outranks an old one.

Exact duplicates (same instruction, input and output) are settled inside the sample, so
memory is bounded by ``n``: of two copies within a source the lower rank wins, whatever
the order they come in; a copy of a record that an earlier source kept is a duplicate of
that source.
"""

from __future__ import annotations

import hashlib
import heapq
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

T = TypeVar("T")

Outcome = Literal["kept", "not_sampled", "duplicate", "duplicate_id"]


def rank(seed: int, key: str) -> int:
    """A 64-bit rank of ``key`` under ``seed``."""
    digest = hashlib.blake2b(f"{seed}\x1f{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def content_key(*parts: str) -> int:
    """A 64-bit key of text content, for exact-duplicate detection."""
    digest = hashlib.blake2b("\x1f".join(parts).encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big")


@dataclass(slots=True, eq=False)
class _Entry:
    rank: int
    id: str
    key: int | None
    item: Any
    alive: bool = True

    def __lt__(self, other: _Entry) -> bool:
        # heapq keeps the smallest first; here that is the worst entry (highest rank, then id).
        return (self.rank, self.id) > (other.rank, other.id)


class Sample(Generic[T]):
    """The ``n`` lowest-ranked items of one source (``n=None``: all), without exact repeats.

    ``offer`` says what became of an item: ``kept`` (for now: a better one may still push it
    out), ``not_sampled``, ``duplicate`` (this item, or the copy it displaced, repeats content
    already in the sample or in ``taken``) or ``duplicate_id`` (an id already in the sample).
    """

    def __init__(self, n: int | None, taken: Mapping[int, str] | None = None):
        self.n = n
        self.taken: Mapping[int, str] = taken if taken is not None else {}
        self._heap: list[_Entry] = []
        self._by_id: dict[str, _Entry] = {}
        self._by_key: dict[int, _Entry] = {}

    def __len__(self) -> int:
        return len(self._by_id)

    def offer(self, rank_: int, id_: str, key: int | None, item: T) -> Outcome:
        if id_ in self._by_id:
            return "duplicate_id"
        outcome: Outcome = "kept"
        if key is not None:
            if key in self.taken:
                return "duplicate"
            other = self._by_key.get(key)
            if other is not None:
                if (rank_, id_) > (other.rank, other.id):
                    return "duplicate"
                self._remove(other)  # this copy outranks the one in the sample: it takes its place
                outcome = "duplicate"
        if self.n is not None and len(self._by_id) >= self.n:
            worst = self._worst()
            if (rank_, id_) > (worst.rank, worst.id):
                return "not_sampled"
            self._remove(worst)
        entry = _Entry(rank_, id_, key, item)
        heapq.heappush(self._heap, entry)
        self._by_id[id_] = entry
        if key is not None:
            self._by_key[key] = entry
        return outcome

    def would_admit(self, rank_: int, id_: str) -> bool:
        """Whether an item of this rank could still enter the sample."""
        if self.n is None or len(self._by_id) < self.n:
            return True
        worst = self._worst()
        return (rank_, id_) < (worst.rank, worst.id)

    def content_keys(self) -> list[int]:
        """Content keys of the kept items."""
        return list(self._by_key)

    def items(self) -> list[T]:
        """Kept items, lowest rank first."""
        return [e.item for e in self._sorted()]

    def ranked(self) -> list[tuple[int, str, int | None, T]]:
        """Kept items as ``(rank, id, content key, item)``, lowest rank first."""
        return [(e.rank, e.id, e.key, e.item) for e in self._sorted()]

    def _sorted(self) -> list[_Entry]:
        return sorted(self._by_id.values(), key=lambda e: (e.rank, e.id))

    def _worst(self) -> _Entry:
        while not self._heap[0].alive:
            heapq.heappop(self._heap)
        return self._heap[0]

    def _remove(self, entry: _Entry) -> None:
        entry.alive = False  # lazily dropped from the heap when it reaches the top
        del self._by_id[entry.id]
        if entry.key is not None:
            del self._by_key[entry.key]
        if len(self._heap) > 2 * len(self._by_id) + 64:  # many dead entries: rebuild
            self._heap = [e for e in self._heap if e.alive]
            heapq.heapify(self._heap)


def sample_ids(seed: int, ids: Iterable[str], n: int | None) -> list[str]:
    """The ids that a build with this seed keeps (helper for tests and audits)."""
    keep: Sample[str] = Sample(n)
    for i in ids:
        keep.offer(rank(seed, i), i, None, i)
    return keep.items()
