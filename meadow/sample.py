"""Deterministic, order-independent subsampling and exact-duplicate keys.

Each record gets a rank from a seeded hash of its id; a source keeps the ``n`` lowest
ranks in a bounded heap. The same seed and ids give the same sample whatever the file
order, and adding rows to a source only lets a new row in where it outranks an old one.
"""

from __future__ import annotations

import hashlib
import heapq
from collections.abc import Iterable
from typing import Generic, TypeVar

T = TypeVar("T")


def rank(seed: int, key: str) -> int:
    """A 64-bit rank of ``key`` under ``seed``."""
    digest = hashlib.blake2b(f"{seed}\x1f{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def content_key(*parts: str) -> int:
    """A 64-bit key of text content, for exact-duplicate detection."""
    digest = hashlib.blake2b("\x1f".join(parts).encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big")


class BottomN(Generic[T]):
    """Keep the items with the ``n`` lowest ``(rank, tiebreak)`` keys; ``n=None`` keeps all."""

    def __init__(self, n: int | None):
        self.n = n
        self._heap: list[tuple[int, _Neg, int, T]] = []  # max-heap through negated ranks
        self._seq = 0  # never compares items, even on a full (rank, tiebreak) tie

    def offer(self, rank_: int, tiebreak: str, item: T) -> None:
        self._seq += 1
        entry = (-rank_, _Neg(tiebreak), self._seq, item)
        if self.n is None or len(self._heap) < self.n:
            heapq.heappush(self._heap, entry)
        elif (-rank_, _Neg(tiebreak)) > (self._heap[0][0], self._heap[0][1]):
            heapq.heapreplace(self._heap, entry)

    def __len__(self) -> int:
        return len(self._heap)

    def items(self) -> list[T]:
        """Kept items, lowest rank first."""
        return [e[3] for e in sorted(self._heap, key=lambda e: (-e[0], e[1].value, e[2]))]


class _Neg:
    """Reverses string order inside the max-heap (so ties keep the smallest tiebreak)."""

    __slots__ = ("value",)

    def __init__(self, value: str):
        self.value = value

    def __lt__(self, other: _Neg) -> bool:
        return self.value > other.value

    def __gt__(self, other: _Neg) -> bool:
        return self.value < other.value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Neg) and self.value == other.value


def sample_ids(seed: int, ids: Iterable[str], n: int | None) -> list[str]:
    """The ids that a build with this seed keeps (helper for tests and audits)."""
    keep: BottomN[str] = BottomN(n)
    for i in ids:
        keep.offer(rank(seed, i), i, i)
    return keep.items()
