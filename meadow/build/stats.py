"""What a build counts per source: counters that add up across shards.

A source read in one pass and the same source read in shards by workers (meadow.build.shards)
count into the same ``SourceStats``: each shard counts into its own, and the driver adds them,
in file order (``total += part``), as datatrove's ``utils/stats.py`` adds the stats of its tasks.
The one JSON form of a ``SourceStats`` (``to_json``/``from_json``) carries a shard's counts to the
driver; the manifest's per-source report is made from it by meadow.build.manifest.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from meadow.build.sample import rank
from meadow.records import Record
from meadow.sources import Drop

DROP_EXAMPLES = 5
"""How many examples the manifest keeps per drop reason, and dropped_samples.json per reason."""

DroppedRow = tuple[int, str, dict[str, str]]
"""(rank, id, the record's fields): a valid record left out, kept for dropped_samples.json."""


@dataclass
class SourceStats:
    loader: str
    n: int | str
    inputs: list[dict[str, Any]] = field(default_factory=list)
    read: int = 0
    yielded: int = 0  # records and passages the loader gave (the rest of ``read`` it dropped)
    dropped: Counter[str] = field(default_factory=Counter)
    drop_examples: dict[str, list[tuple[int, str]]] = field(default_factory=dict)
    """reason -> the DROP_EXAMPLES lowest-ranked examples (rank, "where: detail") of it: a record's
    rank, or for a loader's drop the seeded rank of its text, so the choice does not depend on
    which rows come first."""
    duplicates: int = 0
    duplicate_of: Counter[str] = field(default_factory=Counter)
    near_duplicates: int | None = None  # None: the build does no near dedup
    near_duplicate_of: Counter[str] = field(default_factory=Counter)
    near_dedup_short: int = 0  # records short of n because the oversampled candidates ran out
    unique: int = 0
    sampled: int = 0
    seconds: float = 0.0
    step_seconds: Counter[str] = field(default_factory=Counter)
    """step -> seconds spent in it (load, filter, decontaminate, sample, rephrase, near_dedup)."""
    peak_rss_mib: float | None = None  # the driver's peak memory when the source was done
    llm: dict[str, Any] | None = None  # rephrasing accounting, for sources that yield passages
    base: str = ""  # the folder recipe paths are relative to, with a trailing separator
    seed: int = 0  # the recipe's seed: ranks the examples of loader drops
    dropped_records: dict[str, list[DroppedRow]] = field(default_factory=dict)
    """reason -> the DROP_EXAMPLES lowest-ranked records dropped for it (for the stats report)."""
    contaminated: Counter[str] | None = None
    """benchmark -> records found in it (None: the build does not decontaminate)."""
    contamination: list[dict[str, Any]] = field(default_factory=list)
    """The lines of contamination.jsonl for this source."""

    # ----------------------------------------------------------------------- counting

    def drop(self, d: Drop) -> None:
        """Count a unit a loader did not keep."""
        self.dropped[d.reason] += 1
        at = d.where.removeprefix(self.base)  # paths as the recipe gives them
        text = f"{at}: {d.detail}" if d.detail else at
        self._example(d.reason, rank(self.seed, text), text)

    def drop_record(
        self, reason: str, record: Record, rank_: int, detail: str = "", *, count: bool = True
    ) -> None:
        """A valid record left out for ``reason`` (a filter, contamination, a near duplicate).

        ``count``: also count it in ``dropped`` (False for kinds counted apart, like near
        duplicates). The records kept for dropped_samples.json are the lowest-ranked, so they do
        not depend on row order.
        """
        if count:
            self.dropped[reason] += 1
            self._example(reason, rank_, f"{record.id}: {detail}" if detail else record.id)
        row = {
            "id": record.id,
            "instruction": record.instruction,
            "input": record.input,
            "output": record.output,
        }
        if detail:
            row["detail"] = detail
        self.dropped_records[reason] = _lowest(
            [*self.dropped_records.get(reason, []), (rank_, record.id, row)]
        )

    def _example(self, reason: str, rank_: int, text: str) -> None:
        self.drop_examples[reason] = _lowest([*self.drop_examples.get(reason, []), (rank_, text)])

    def contaminated_by(self, benchmark: str, row: dict[str, Any]) -> None:
        """A record found in ``benchmark``: counted, and its contamination.jsonl line kept."""
        if self.contaminated is not None:
            self.contaminated[benchmark] += 1
        self.contamination.append(row)

    # ----------------------------------------------------------------------- adding

    def __add__(self, other: SourceStats) -> SourceStats:
        """The counts of ``self`` and then ``other`` (a later shard of the same source).

        Counters add; the examples and records kept per reason are the lowest-ranked of both, so
        adding shards keeps what one pass over the files keeps, in whatever order they are added.
        """
        out = dataclasses.replace(self)
        for f in dataclasses.fields(self):
            a, b = getattr(self, f.name), getattr(other, f.name)
            if f.name in ("loader", "n", "base", "seed", "inputs", "llm"):
                value = a if a or not b else b  # the source's settings: the same in every part
            elif f.name in ("drop_examples", "dropped_records"):
                value = {r: _lowest(a.get(r, []) + b.get(r, [])) for r in {**a, **b}}
            elif f.name == "peak_rss_mib":
                value = max((v for v in (a, b) if v is not None), default=None)
            elif a is None or b is None:  # near_duplicates, contaminated: None where the step is off
                value = b if a is None else a
            else:
                value = a + b
            setattr(out, f.name, value)
        return out

    def __iadd__(self, other: SourceStats) -> SourceStats:
        total = self + other
        for f in dataclasses.fields(self):
            setattr(self, f.name, getattr(total, f.name))
        return self

    # ----------------------------------------------------------------------- one JSON form

    def to_json(self) -> dict[str, Any]:
        """Every field as plain JSON (a shard's ``.done`` marker carries it to the driver)."""
        # not dataclasses.asdict: it rebuilds a Counter from (key, count) pairs, counting the pairs
        return {f.name: json_safe(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SourceStats:
        st = cls(**data)
        for name in ("dropped", "duplicate_of", "near_duplicate_of", "step_seconds"):
            setattr(st, name, Counter(getattr(st, name)))
        if st.contaminated is not None:
            st.contaminated = Counter(st.contaminated)
        st.dropped_records = {r: [tuple(e) for e in rows] for r, rows in st.dropped_records.items()}
        st.drop_examples = {r: [tuple(e) for e in rows] for r, rows in st.drop_examples.items()}
        return st

    def examples(self) -> dict[str, list[str]]:
        """reason -> its example texts, lowest rank first (the manifest's ``drop_examples``)."""
        return {reason: [text for _, text in rows] for reason, rows in sorted(self.drop_examples.items())}

    def dropped_samples(self) -> dict[str, list[dict[str, str]]]:
        return {reason: [row for _, _, row in rows] for reason, rows in sorted(self.dropped_records.items())}


def _lowest(rows: list[Any]) -> list[Any]:
    """The ``DROP_EXAMPLES`` lowest of (rank, id or text, ...) entries."""
    return sorted(rows, key=lambda e: (e[0], e[1]))[:DROP_EXAMPLES]


def json_safe(value: Any) -> Any:
    """``value`` with tuples as lists and Counters as dicts, as JSON reads it back."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value
