"""`meadow diff BUILD_A BUILD_B`: what changed between two builds, per source.

Records are matched by their stable id (meadow ids derive from upstream ids, never from row
numbers), so a record is *added* (its id only in B), *removed* (only in A) or *changed* (in both,
with another instruction, input or output), whatever the row order. Besides the records: per
source, the drop reasons whose counts moved, the kept count, and whether the loader or its input
files (sha256) differ; for the build, whether the recipe and the meadow version differ. Both
builds are checked against their manifests' output hashes first, so a half-written or edited
build is an error, not a wrong answer.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from meadow.errors import MeadowError
from meadow.io import file_info
from meadow.schemas.manifest import Manifest, SourceReport
from meadow.schemas.outputs import MANIFEST_NAME, PARQUET_NAME

EXAMPLES = 5
"""Record ids listed per source and kind of change (the lowest, sorted)."""


@dataclass
class SourceDiff:
    source: str
    status: str
    """``both``, ``added`` (a source only in B) or ``removed`` (only in A)."""
    kept: tuple[int, int] = (0, 0)
    added: int = 0
    removed: int = 0
    changed: int = 0
    unchanged: int = 0
    examples: dict[str, list[str]] = field(default_factory=dict)
    """added / removed / changed -> the first record ids (sorted)."""
    drops: dict[str, tuple[int, int]] = field(default_factory=dict)
    """Drop reason -> (count in A, count in B), for the reasons whose count differs."""
    inputs_changed: bool = False
    loader_changed: bool = False

    @property
    def same(self) -> bool:
        return (
            self.status == "both"
            and not (self.added or self.removed or self.changed or self.drops)
            and not (self.inputs_changed or self.loader_changed)
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "kept": list(self.kept),
            "added": self.added,
            "removed": self.removed,
            "changed": self.changed,
            "unchanged": self.unchanged,
            "examples": self.examples,
            "drops": {reason: list(counts) for reason, counts in self.drops.items()},
            "inputs_changed": self.inputs_changed,
            "loader_changed": self.loader_changed,
        }


@dataclass
class BuildDiff:
    a: Path
    b: Path
    recipe_changed: bool
    meadow_version: tuple[str, str]
    records: tuple[int, int]
    sources: list[SourceDiff]

    @property
    def same(self) -> bool:
        return not self.recipe_changed and all(s.same for s in self.sources)

    def to_json(self) -> dict[str, Any]:
        return {
            "a": str(self.a),
            "b": str(self.b),
            "same": self.same,
            "recipe_changed": self.recipe_changed,
            "meadow_version": list(self.meadow_version),
            "records": list(self.records),
            "sources": {s.source: s.to_json() for s in self.sources},
        }


def diff_builds(a: str | Path, b: str | Path) -> BuildDiff:
    """Compare build folder ``a`` (the old one) with ``b`` (the new one)."""
    a, b = Path(a), Path(b)
    ma, mb = _checked(a), _checked(b)
    ra, rb = _records(a, ma), _records(b, mb)
    names = list(dict.fromkeys([*ma.sources, *mb.sources]))
    out = []
    for name in names:
        sa, sb = ma.sources.get(name), mb.sources.get(name)
        status = "both" if sa is not None and sb is not None else ("removed" if sb is None else "added")
        out.append(_source_diff(name, status, sa, sb, ra.get(name, {}), rb.get(name, {})))
    return BuildDiff(
        a,
        b,
        recipe_changed=ma.recipe_sha256 != mb.recipe_sha256 or ma.recipe != mb.recipe,
        meadow_version=(ma.meadow_version, mb.meadow_version),
        records=(ma.totals.records, mb.totals.records),
        sources=out,
    )


def _checked(build: Path) -> Manifest:
    """The build's manifest, after checking its Parquet against the manifest's sha256."""
    if not build.is_dir():
        raise MeadowError(f"{build}: no such folder; expected a build folder written by `meadow build`")
    manifest = Manifest.read(build / MANIFEST_NAME)
    listed = manifest.outputs.get(PARQUET_NAME)
    if listed is None:
        raise MeadowError(f"{build / MANIFEST_NAME}: lists no {PARQUET_NAME}; not a complete build")
    info = file_info(build / PARQUET_NAME)
    if info["sha256"] != listed.sha256:
        raise MeadowError(
            f"{build / PARQUET_NAME}: does not match {MANIFEST_NAME} (the build was changed or half-written)"
        )
    return manifest


def _records(build: Path, manifest: Manifest) -> dict[str, dict[str, bytes]]:
    """Recipe source name -> record id -> a digest of its instruction, input and output.

    A record's ``source`` column is finer than the recipe's source name (``mmlu/anatomy``), so
    rows are assigned to the recipe's sources by the manifest's counts: the rows are in recipe
    order, each source's kept records in one run.
    """
    bounds = [(name, s.sampled) for name, s in manifest.sources.items()]
    out: dict[str, dict[str, bytes]] = defaultdict(dict)
    table = pq.read_table(build / PARQUET_NAME, columns=["id", "instruction", "input", "output"])
    cols = [table.column(c).to_pylist() for c in ("id", "instruction", "input", "output")]
    at = 0
    for name, count in bounds:
        for i in range(at, at + count):
            text = "\x1f".join(col[i] for col in cols[1:])
            out[name][cols[0][i]] = hashlib.blake2b(text.encode(), digest_size=16).digest()
        at += count
    if at != table.num_rows:
        raise MeadowError(f"{build / PARQUET_NAME}: {table.num_rows:,} rows, but the manifest kept {at:,}")
    return out


def _source_diff(
    name: str,
    status: str,
    sa: SourceReport | None,
    sb: SourceReport | None,
    ra: dict[str, bytes],
    rb: dict[str, bytes],
) -> SourceDiff:
    added = sorted(rb.keys() - ra.keys())
    removed = sorted(ra.keys() - rb.keys())
    both = ra.keys() & rb.keys()
    changed = sorted(i for i in both if ra[i] != rb[i])
    drops_a = sa.dropped if sa is not None else {}
    drops_b = sb.dropped if sb is not None else {}
    drops = {
        reason: (drops_a.get(reason, 0), drops_b.get(reason, 0))
        for reason in sorted({*drops_a, *drops_b})
        if drops_a.get(reason, 0) != drops_b.get(reason, 0)
    }
    examples = {
        k: v[:EXAMPLES] for k, v in (("added", added), ("removed", removed), ("changed", changed)) if v
    }
    return SourceDiff(
        name,
        status,
        kept=(len(ra), len(rb)),
        added=len(added),
        removed=len(removed),
        changed=len(changed),
        unchanged=len(both) - len(changed),
        examples=examples,
        drops=drops,
        inputs_changed=sa is not None
        and sb is not None
        and [i.sha256 for i in sa.inputs] != [i.sha256 for i in sb.inputs],
        loader_changed=sa is not None and sb is not None and sa.loader != sb.loader,
    )
