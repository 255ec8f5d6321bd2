"""Near-duplicate removal across a build: MinHash signatures, LSH banding, an exact Jaccard check.

Two records are near duplicates when the Jaccard similarity of their sets of word
``shingle``-grams is at least ``threshold``. The text compared is the instruction, the input
and the output together (NFKC, case-folded, only ``\\w+`` words count, so case, punctuation and
spacing changes do not matter). The instruction is part of it on purpose: it names the task.
The same PubMed sentence asked as a causal-language question (pubmed_causal) and as a
health-advice question (pubmed_health_advice) is two examples; on input and output alone such
pairs in the fixture slices reach 0.88.

Which copy is kept. The sources are taken in recipe order (the priority) and, within a source,
its candidates lowest sampling rank first. A record is kept unless it is a near duplicate of a
record already kept, by an earlier source or by this source; once a source has kept its ``n``
records it stops. This greedy pass in (source priority, rank) order is canonical: near
duplication is not transitive (A~B and B~C but not A~C), so evicting copies while rows stream in
would give an outcome that depends on the row order; ranks and ids do not. A record is only
ever dropped as the near duplicate of a record that is in the output. The pass over a source
runs as soon as the source is read, since it needs only what earlier sources kept: the margin
below is freed before the next source is read, and exact dedup's check against earlier
sources (meadow.build's ``taken``) sees only records that are in the output.

Where the candidates come from. A source's bounded sample (meadow.build.sample) keeps its
``n * (1 + oversample)`` lowest-ranked records (all of them for ``n: all``), so memory stays
bounded by what is kept, not by the rows read. When more than ``oversample`` of a source's
candidates are near duplicates, fewer than ``n`` are left; the build reports the shortfall
(``near_dedup_short``) rather than hiding it. A near duplicate is counted where it is looked
at: records ranked beyond a full sample are never compared.

How pairs are found. Each record's shingles are hashed (64-bit) and turned into a MinHash
signature with datasketch's ``affine32`` permutations (the signatures equal datasketch's
``MinHash.update_batch`` of the same shingle hashes), computed for a batch of records at once
in numpy: datasketch's per-record ``MinHash`` costs about 0.3 ms a record, the batch about
0.03 ms. The signature is cut into ``bands`` bands of ``rows`` values (LSH); records that agree
on a whole band are candidates. The bands are chosen for a recall of at least 95% at the
threshold (``lsh_bands``; 18 x 7 for 0.8 and 128 permutations, 98.6%). Candidates are then
checked by their exact Jaccard similarity, so a false candidate costs time, never a record, and
the threshold in the manifest means what it says. Before that check, a candidate kept in an
earlier batch whose size, or whose b-bit MinHash estimate (the low byte of each signature
value), puts it more than 4.5 standard deviations below the threshold is passed over: on
template-like text (a long fixed instruction, a short answer) many pairs at 0.3-0.5 share a
band, and recomputing their shingles would grow the time quadratically.

The index of kept records holds per record its band keys (in sorted numpy runs, merged like a
binary counter so each key is re-sorted O(log n) times: 216 bytes with 18 bands), its b-bit
signature (128 bytes) and shingle count, where datasketch's MinHashLSH takes 3.7 KB a record
with 9 bands. A candidate's shingles are recomputed from its text, which the build keeps anyway.
"""

from __future__ import annotations

import math
import re
import unicodedata
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

WORD = re.compile(r"\w+")
BATCH = 1024
"""Records signed and queried together."""
PERMUTATION_SEED = 1
"""datasketch's default seed: signatures do not depend on the recipe's sampling seed."""
RECALL = 0.95
"""Lowest chance that LSH makes a pair exactly at the threshold a candidate."""

_U64 = np.uint64
_FIELD_SEP = "\x1f"  # never a \w+ word: marks the boundary between instruction, input and output
_PAD = "\x1e"  # pads a text shorter than one shingle
_SHINGLE_MULT = _U64(0x9E3779B97F4A7C15)
_POLY = _U64(0x100000001B3)  # odd, so invertible modulo 2^64
_POLY_INV = _U64(pow(0x100000001B3, -1, 2**64))
_BAND_SALT = _U64(0xD6E8FEB86659FD93)


class Text(Protocol):
    instruction: str
    input: str
    output: str


def _fmix64(h: np.ndarray) -> np.ndarray:
    h = h ^ (h >> _U64(33))
    h = h * _U64(0xFF51AFD7ED558CCD)
    h = h ^ (h >> _U64(33))
    h = h * _U64(0xC4CEB9FE1A85EC53)
    return h ^ (h >> _U64(33))


def _fmix32(h: np.ndarray) -> np.ndarray:
    h = h ^ (h >> np.uint32(16))
    h = h * np.uint32(0x85EBCA6B)
    h = h ^ (h >> np.uint32(13))
    h = h * np.uint32(0xC2B2AE35)
    return h ^ (h >> np.uint32(16))


_BAND_MULTS = _fmix64(np.arange(1, 1025, dtype=_U64)) | _U64(1)  # odd multipliers, one per row of a band


def words(record: Text) -> list[str]:
    """The words compared: NFKC, case-folded ``\\w+`` runs of instruction, input and output.

    Not meadow.text.words on purpose: that normaliser (filters, decontamination) drops single
    letters so that option letters do not matter when a question is compared with its copy; here
    single letters are content ("vitamin a" vs "vitamin k", "type a" vs "type b" personalities), and
    dropping them would merge records that differ only there. The field separator keeps a shingle
    from spanning the instruction and the output.
    """
    out: list[str] = []
    for i, text in enumerate((record.instruction, record.input, record.output)):
        if i:
            out.append(_FIELD_SEP)
        out += WORD.findall(unicodedata.normalize("NFKC", text).casefold())
    return out


def word_hashes(text: str) -> np.ndarray:
    """64-bit hashes of the space-separated words of ``text``, in order, computed for all of them
    at once: a polynomial hash of each word's UTF-8 bytes from prefix sums, then mixed."""
    buf = np.frombuffer(f" {text} ".encode("utf-8", "surrogatepass"), dtype=np.uint8)
    spaces = np.flatnonzero(buf == 32)
    starts, ends = spaces[:-1] + 1, spaces[1:]
    with np.errstate(over="ignore"):
        powers = np.full(len(buf), _POLY, dtype=_U64)
        powers[0] = 1
        inverse = np.full(len(buf), _POLY_INV, dtype=_U64)
        inverse[0] = 1
        powers, inverse = np.cumprod(powers, dtype=_U64), np.cumprod(inverse, dtype=_U64)
        prefix = np.zeros(len(buf) + 1, dtype=_U64)  # prefix[i] = sum of byte[j] * POLY^-j, j < i
        np.cumsum(buf.astype(_U64) * inverse, dtype=_U64, out=prefix[1:])
        # sum of byte[j] * POLY^(end - 1 - j) over a word's bytes
        h = (prefix[ends] - prefix[starts]) * powers[ends - 1]
        return _fmix64(h + (ends - starts).astype(_U64))


def lsh_bands(threshold: float, num_perm: int, recall: float = RECALL) -> tuple[int, int]:
    """(bands, rows per band): the most rows (fewest false candidates) that still make a pair
    of similarity ``threshold`` a candidate with probability >= ``recall``."""
    for rows in range(num_perm, 0, -1):
        bands = num_perm // rows
        if candidate_probability(threshold, bands, rows) >= recall:
            return bands, rows
    return num_perm, 1


def candidate_probability(similarity: float, bands: int, rows: int) -> float:
    """The chance that two records of this Jaccard similarity agree on at least one band."""
    return 1.0 - (1.0 - similarity**rows) ** bands


@dataclass(frozen=True, slots=True)
class NearDuplicate:
    """A candidate left out: ``record`` (rank ``rank``) is a near duplicate of ``of_id`` in ``of_source``."""

    rank: int
    record: Any
    of_id: str
    of_source: str
    similarity: float


class Shingler:
    """Word-shingle hashes and MinHash signatures, a batch of records at a time."""

    def __init__(self, shingle: int, num_perm: int):
        from datasketch import MinHash

        self.shingle = shingle
        self.num_perm = num_perm
        a, b = MinHash(num_perm=num_perm, seed=PERMUTATION_SEED, scheme="affine32").permutations
        self._a = np.asarray(a, dtype=np.uint32)
        self._b = np.asarray(b, dtype=np.uint32)
        self._powers = np.array(
            [pow(int(_SHINGLE_MULT), shingle - 1 - j, 2**64) for j in range(shingle)], _U64
        )

    def shingles(self, records: Sequence[Text]) -> list[np.ndarray]:
        """Each record's shingle hashes: sorted, unique uint64 (empty for a text without words)."""
        k = self.shingle
        texts: list[str] = []
        counts: list[int] = []
        for record in records:
            ws = words(record)
            if len(ws) == 2:  # only the two field separators: no word at all
                counts.append(0)
                continue
            if len(ws) < k:
                ws += [_PAD] * (k - len(ws))
            counts.append(len(ws))
            texts.append(" ".join(ws))
        if not texts:
            return [np.empty(0, _U64) for _ in records]
        h = word_hashes(" ".join(texts))
        cnt = np.array(counts, dtype=np.int64)
        with np.errstate(over="ignore"):
            rolled = np.zeros(len(h) - k + 1, dtype=_U64)
            for j in range(k):
                rolled += h[j : len(h) - k + 1 + j] * self._powers[j]
            rolled = _fmix64(rolled)
        starts = np.concatenate(([0], np.cumsum(cnt)[:-1]))
        per_doc = np.maximum(cnt - k + 1, 0)
        doc = np.repeat(np.arange(len(cnt)), per_doc)
        offset = np.repeat(starts - (np.cumsum(per_doc) - per_doc), per_doc)
        values = rolled[np.arange(per_doc.sum()) + offset]  # the shingles that start inside each text
        order = np.lexsort((values, doc))
        values, doc = values[order], doc[order]
        first = np.ones(len(values), dtype=bool)
        first[1:] = (values[1:] != values[:-1]) | (doc[1:] != doc[:-1])
        values, doc = values[first], doc[first]
        bounds = np.searchsorted(doc, np.arange(len(cnt) + 1))
        return [values[bounds[i] : bounds[i + 1]] for i in range(len(cnt))]

    def signatures(self, sets: Sequence[np.ndarray]) -> np.ndarray:
        """MinHash signatures (len(sets) x num_perm, uint32) of shingle sets; empty sets get all-max."""
        out = np.full((len(sets), self.num_perm), np.iinfo(np.uint32).max, dtype=np.uint32)
        filled = [i for i, s in enumerate(sets) if len(s)]
        if not filled:
            return out
        values = np.concatenate([sets[i] for i in filled])
        x = _fmix32(((values ^ (values >> _U64(32))) & _U64(0xFFFFFFFF)).astype(np.uint32))
        seg = np.concatenate(([0], np.cumsum([len(sets[i]) for i in filled])[:-1]))
        step = max(1, min(self.num_perm, (1 << 22) // len(x)))  # temporaries of at most 16 MiB
        with np.errstate(over="ignore"):
            for p in range(0, self.num_perm, step):
                v = x[None, :] * self._a[p : p + step, None] + self._b[p : p + step, None]
                out[filled, p : p + step] = np.minimum.reduceat(v, seg, axis=1).T
        return out


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """Jaccard similarity of two sorted unique arrays."""
    if not len(a) or not len(b):
        return 0.0
    inter = len(np.intersect1d(a, b, assume_unique=True))
    return inter / (len(a) + len(b) - inter)


class NearDedupIndex:
    """The records kept so far by a build, and the greedy pass that admits a source's candidates."""

    def __init__(self, threshold: float, shingle: int, num_perm: int):
        self.threshold = threshold
        self.shingler = Shingler(shingle, num_perm)
        self.bands, self.rows = lsh_bands(threshold, num_perm)
        self._mults = _BAND_MULTS[: self.rows]
        self._kept: list[tuple[str, Any]] = []  # (source, record), in the order kept
        self._sizes = array("I")  # shingle count of each kept record
        # the low byte of each kept record's signature values (b-bit MinHash), for a cheap estimate
        # of the similarity of a candidate before its shingles are recomputed
        self._sig8 = np.zeros((BATCH, num_perm), dtype=np.uint8)
        margin = 4.5 * math.sqrt(threshold * (1 - threshold) / num_perm)  # 4.5 standard deviations
        self._min_matches = num_perm * ((threshold - margin) * (1 - 1 / 256) + 1 / 256)
        self._runs: list[tuple[np.ndarray, np.ndarray]] = []  # (sorted band keys, kept index of each)
        self.pairs: dict[tuple[str, str], int] = {}  # (kept source, dropped source) -> near duplicates
        self.seconds = 0.0  # time spent in the step, kept by the caller

    @property
    def recall(self) -> float:
        return candidate_probability(self.threshold, self.bands, self.rows)

    def __len__(self) -> int:
        return len(self._kept)

    def select(
        self,
        source: str,
        ranked: Sequence[tuple[int, str, Any, Any]],
        n: int | None,
        on_batch: Callable[[int], None] | None = None,
    ) -> tuple[list[tuple[int, str, Any, Any]], list[NearDuplicate]]:
        """Admit ``ranked`` (``(rank, id, key, record)``, lowest rank first) until ``n`` are kept.

        Returns the entries kept and the near duplicates found; candidates after the ``n``-th
        kept one are neither (the source's sample is full). ``on_batch`` gets the number of
        candidates looked at after each batch (for a progress bar).
        """
        kept: list[tuple[int, str, Any, Any]] = []
        near: list[NearDuplicate] = []
        for start in range(0, len(ranked), BATCH):
            if n is not None and len(kept) >= n:
                break
            batch = ranked[start : start + BATCH]
            sets = self.shingler.shingles([e[3] for e in batch])
            signatures = self.shingler.signatures(sets)
            keys = self._band_keys(signatures)
            sig8 = (signatures & 0xFF).astype(np.uint8)
            earlier = self._query_runs(keys, sets, sig8)
            # kept index -> shingles, for the records kept earlier that are candidates here (their
            # shingles recomputed from their text, in one go) and the records kept in this batch
            known = self._recompute({c for found in earlier.values() for c in found})
            prior = self._batch_pairs(keys, sets)
            kept_at: dict[int, int] = {}  # row in batch -> kept index, for records kept with shingles
            fresh: list[tuple[int, int]] = []  # (row in batch, kept index) of records kept with shingles
            kept_rows: list[int] = []  # row in batch of each record kept
            for i, entry in enumerate(batch):
                if n is not None and len(kept) >= n:
                    break
                shingles = sets[i]
                found = None
                if len(shingles):
                    candidates = set(earlier.get(i, ()))
                    candidates.update(kept_at[j] for j in prior.get(i, ()) if j in kept_at)
                    found = self._best_match(shingles, candidates, known)
                if found is not None:
                    of, similarity = found
                    of_source, of_record = self._kept[of]
                    near.append(NearDuplicate(entry[0], entry[3], of_record.id, of_source, similarity))
                    pair = (of_source, source)
                    self.pairs[pair] = self.pairs.get(pair, 0) + 1
                    continue
                kept.append(entry)
                index = len(self._kept)
                self._kept.append((source, entry[3]))
                self._sizes.append(len(shingles))
                kept_rows.append(i)
                if len(shingles):
                    kept_at[i] = index
                    known[index] = shingles
                    fresh.append((i, index))
            self._add_run(keys, fresh)
            self._add_sig8(sig8[kept_rows])
            if on_batch is not None:
                on_batch(len(batch))
        return kept, near

    def _batch_pairs(self, keys: np.ndarray, sets: Sequence[np.ndarray]) -> dict[int, set[int]]:
        """Row of a batch -> the earlier rows of the batch that share a band key with it (rows with
        shingles only), found for the whole batch by sorting its keys: most rows share none."""
        rows = np.flatnonzero(np.fromiter((len(x) > 0 for x in sets), dtype=bool, count=len(sets)))
        flat = keys[rows].ravel()
        order = np.argsort(flat, kind="stable")  # stable: a key's rows stay in row order
        flat, owner = flat[order], np.repeat(rows, self.bands)[order]
        same = flat[1:] == flat[:-1]
        if not same.any():
            return {}
        prior: dict[int, set[int]] = {}
        # a run of one key: from where ``same`` turns true to where it turns false again
        ends = np.flatnonzero(np.diff(np.concatenate(([False], same, [False])).astype(np.int8)))
        for a, b in zip(ends[::2].tolist(), ends[1::2].tolist(), strict=True):  # runs of one key
            members = owner[a : b + 1].tolist()
            for k in range(1, len(members)):
                prior.setdefault(members[k], set()).update(members[:k])
        return prior

    def _best_match(
        self, shingles: np.ndarray, candidates: set[int], known: dict[int, np.ndarray]
    ) -> tuple[int, float] | None:
        """The kept record most similar to ``shingles`` at or above the threshold (ties: the first kept)."""
        best: tuple[int, float] | None = None
        for c in sorted(candidates):
            if not self._may_reach(len(shingles), self._sizes[c]):
                continue
            similarity = jaccard(shingles, known[c])
            if similarity >= self.threshold and (best is None or similarity > best[1]):
                best = (c, similarity)
        return best

    def _may_reach(self, size: int, other: int) -> bool:
        """|A & B| / |A | B| <= min / max: sets this different in size cannot reach the threshold."""
        return min(size, other) >= self.threshold * max(size, other)

    def _recompute(self, indices: set[int]) -> dict[int, np.ndarray]:
        """Shingles of kept records, recomputed from their text."""
        order = sorted(indices)
        return dict(zip(order, self.shingler.shingles([self._kept[c][1] for c in order]), strict=True))

    def _band_keys(self, signatures: np.ndarray) -> np.ndarray:
        """One 64-bit key per band (len x bands): equal keys <=> equal band (up to 2^-64)."""
        b, r = self.bands, self.rows
        bands = signatures[:, : b * r].reshape(len(signatures), b, r).astype(_U64)
        with np.errstate(over="ignore"):
            mixed = (bands * self._mults).sum(axis=2, dtype=_U64)
            mixed += np.arange(b, dtype=_U64) * _BAND_SALT  # a band's key never matches another band's
            return _fmix64(mixed)

    def _query_runs(
        self, keys: np.ndarray, sets: Sequence[np.ndarray], sig8: np.ndarray
    ) -> dict[int, list[int]]:
        """Row of ``keys`` -> the kept indices in the frozen runs that share a band key with it,
        less those that cannot reach the threshold: a size too different, or a b-bit estimate of
        the similarity more than 4.5 standard deviations below it."""
        flat = keys.ravel()
        rows_: list[np.ndarray] = []
        owners_: list[np.ndarray] = []
        for run_keys, run_owners in self._runs:
            lo = np.searchsorted(run_keys, flat, "left")
            count = np.searchsorted(run_keys, flat, "right") - lo
            hit = np.flatnonzero(count)
            if len(hit):
                c = count[hit]
                at = np.repeat(lo[hit], c) + np.arange(c.sum()) - np.repeat(np.cumsum(c) - c, c)
                rows_.append(np.repeat(hit // self.bands, c))
                owners_.append(run_owners[at].astype(np.int64))
        if not rows_:
            return {}
        span = len(self._kept) + 1
        pairs = np.unique(np.concatenate(rows_) * span + np.concatenate(owners_))  # one per band shared
        rows, owners = pairs // span, pairs % span
        mine = np.array([len(s) for s in sets], dtype=np.float64)[rows]
        theirs = np.frombuffer(self._sizes, dtype=np.uint32)[owners].astype(np.float64)
        ok = np.minimum(mine, theirs) >= self.threshold * np.maximum(mine, theirs)
        ok &= (self._sig8[owners] == sig8[rows]).sum(axis=1) >= self._min_matches
        found: dict[int, list[int]] = {}
        for row, owner in zip(rows[ok].tolist(), owners[ok].tolist(), strict=True):
            found.setdefault(row, []).append(owner)
        return found

    def _add_sig8(self, rows: np.ndarray) -> None:
        """Store the b-bit signatures of the records just kept (at their kept indices)."""
        end = len(self._kept)
        if end > len(self._sig8):
            grown = np.zeros((max(end, 2 * len(self._sig8)), self._sig8.shape[1]), dtype=np.uint8)
            grown[: end - len(rows)] = self._sig8[: end - len(rows)]
            self._sig8 = grown
        self._sig8[end - len(rows) : end] = rows

    def _add_run(self, keys: np.ndarray, fresh: list[tuple[int, int]]) -> None:
        """Freeze the band keys of the records kept in a batch (``fresh``: row of ``keys``, kept
        index) into a sorted run; runs of similar size are merged (like a binary counter), so
        each key is re-sorted O(log n) times."""
        if not fresh:
            return
        keys = keys[[row for row, _ in fresh]].ravel()
        owners = np.repeat(np.array([index for _, index in fresh], dtype=np.int32), self.bands)
        order = np.argsort(keys, kind="stable")
        self._runs.append((keys[order], owners[order]))
        while len(self._runs) > 1 and len(self._runs[-1][0]) * 2 >= len(self._runs[-2][0]):
            (k2, o2), (k1, o1) = self._runs.pop(), self._runs.pop()
            keys, owners = np.concatenate((k1, k2)), np.concatenate((o1, o2))
            order = np.argsort(keys, kind="stable")
            self._runs.append((keys[order], owners[order]))

    def info(self) -> dict[str, Any]:
        """For the manifest: the LSH shape and the near-duplicate pairs between (and within) sources."""
        return {
            "bands": self.bands,
            "rows": self.rows,
            "recall_at_threshold": round(self.recall, 4),
            "pairs": {f"{kept} <- {dropped}": c for (kept, dropped), c in sorted(self.pairs.items())},
        }
