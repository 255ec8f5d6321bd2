"""Reading a build folder for the report: its manifest, the dropped and contaminated records,
and one streaming pass over ``merged_medical_meadow.json`` for token lengths and sample records."""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ijson
from pydantic import ValidationError
from tqdm import tqdm

from meadow.errors import MeadowError
from meadow.schemas.manifest import Manifest
from meadow.schemas.outputs import CONTAMINATION_NAME, DROPPED_NAME, JSON_NAME, MANIFEST_NAME
from meadow.stats.tokens import TokenCounter

FIELDS = ("instruction", "input", "output")
EXTRA = "(records past the manifest's counts)"
BATCH = 512
"""Records tokenized per call."""


@dataclass
class Build:
    path: Path
    manifest: Manifest
    dropped_samples: dict[str, dict[str, list[dict[str, Any]]]] | None
    """source -> reason -> records (dropped_samples.json); None where the build wrote none."""
    contamination: list[dict[str, Any]]
    """The first lines of contamination.jsonl."""
    contamination_total: int | None
    """Lines in contamination.jsonl; None where the build wrote none."""


def load_build(build_dir: str | Path, *, contamination_rows: int = 50) -> Build:
    """The manifest and side files of a build folder, with errors that name the file at fault."""
    path = Path(build_dir)
    expected = f"a build folder written by `meadow build` (holding {MANIFEST_NAME} and {JSON_NAME})"
    if not path.is_dir():
        raise MeadowError(f"{path}: no such folder; expected {expected}")
    manifest_path = path / MANIFEST_NAME
    if not manifest_path.is_file():
        raise MeadowError(f"{path}: no {MANIFEST_NAME} in this folder; expected {expected}")
    manifest = _check_manifest(manifest_path, _read_json(manifest_path))
    dropped_path = path / DROPPED_NAME
    dropped = _read_json(dropped_path) if dropped_path.is_file() else None
    if dropped is not None and not (
        isinstance(dropped, dict) and all(isinstance(v, dict) for v in dropped.values())
    ):
        raise MeadowError(f"{dropped_path}: expected an object of source -> reason -> records")
    rows, total = _read_contamination(path / CONTAMINATION_NAME, contamination_rows)
    return Build(path, manifest, dropped, rows, total)


def _read_json(path: Path) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as err:
        raise MeadowError(
            f"{path}: not valid JSON (line {err.lineno}, column {err.colno}: {err.msg})"
        ) from None
    except UnicodeDecodeError as err:
        raise MeadowError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    except OSError as err:
        raise MeadowError(f"{path}: cannot read it ({err.strerror or err})") from None


def _check_manifest(path: Path, manifest: Any) -> Manifest:
    if not isinstance(manifest, dict) or not isinstance(manifest.get("sources"), dict):
        raise MeadowError(f"{path}: not a meadow manifest (expected an object with a 'sources' object)")
    for name, s in manifest["sources"].items():
        if not isinstance(s, dict) or not isinstance(s.get("read"), int):
            raise MeadowError(f"{path}: source {name!r} has no 'read' count; not a meadow manifest")
        for key in ("dropped", "contaminated", "near_duplicate_of", "duplicate_of"):
            if key in s and not isinstance(s[key], dict):
                raise MeadowError(f"{path}: source {name!r}: '{key}' must be an object of counts")
    try:
        return Manifest.model_validate(manifest)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise MeadowError(f"{path}: not a meadow manifest ({where}: {first['msg']})") from None


def _read_contamination(path: Path, keep: int) -> tuple[list[dict[str, Any]], int | None]:
    if not path.is_file():
        return [], None
    rows: list[dict[str, Any]] = []
    total = 0
    with open(path, encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise MeadowError(f"{path}:{line_no}: not valid JSON ({err.msg})") from None
            if not isinstance(row, dict):
                raise MeadowError(f"{path}:{line_no}: expected a JSON object")
            total += 1
            if len(rows) < keep:
                rows.append(row)
    return rows, total


@dataclass
class RecordScan:
    """What one pass over merged_medical_meadow.json found."""

    counts: dict[str, int] = field(default_factory=dict)
    """source -> records in the file."""
    lengths: dict[str, dict[str, list[int]]] = field(default_factory=dict)
    """source -> field -> lengths of the records measured."""
    samples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """source -> its first records in the file."""
    every: int = 1
    """Every ``every``-th record of each source was measured."""

    @property
    def records(self) -> int:
        return sum(self.counts.values())

    @property
    def measured(self) -> int:
        return sum(len(f["output"]) for f in self.lengths.values())

    def totals(self, source: str) -> list[int]:
        """instruction + input + output length of each record measured."""
        f = self.lengths[source]
        return [a + b + c for a, b, c in zip(f["instruction"], f["input"], f["output"], strict=True)]


def scan_records(
    path: Path,
    counter: TokenCounter,
    layout: Sequence[tuple[str, int]],
    *,
    every: int = 1,
    samples: int = 3,
    progress: bool = False,
) -> RecordScan:
    """Stream the records of ``path`` (a JSON array), measuring every ``every``-th record of each
    source with ``counter`` and keeping the first ``samples`` records of each source.

    ``layout``: (recipe source, records kept) in recipe order, from the manifest. A build writes
    each source's records together in that order, so a record's position names its recipe source
    (its own ``source`` field is finer, such as ``mmlu/anatomy``). Records past the manifest's
    counts are put under EXTRA.

    Memory holds the lengths and one batch of texts, not the records."""
    if not path.is_file():
        raise MeadowError(f"{path}: no such file; the build folder is incomplete")
    scan = RecordScan(every=max(1, every))
    bounds = list(itertools.accumulate(count for _, count in layout))
    names = [name for name, _ in layout]
    part = 0
    batch: list[tuple[str, dict[str, str]]] = []
    total = bounds[-1] if bounds else None
    bar = tqdm(total=total, desc="token lengths", unit=" records", disable=None if progress else True)
    try:
        with open(path, "rb") as f:
            for index, item in enumerate(ijson.items(f, "item")):
                texts = _texts(path, index, item)
                while part < len(bounds) and index >= bounds[part]:
                    part += 1
                source = names[part] if part < len(names) else EXTRA
                seen = scan.counts.get(source, 0)
                scan.counts[source] = seen + 1
                if seen < samples:
                    scan.samples.setdefault(source, []).append(item)
                if seen % scan.every == 0:
                    batch.append((source, texts))
                    if len(batch) >= BATCH:
                        _measure(batch, counter, scan)
                        batch = []
                if not (index + 1) % 1024:
                    bar.update(1024)
        _measure(batch, counter, scan)
        bar.update(scan.records - bar.n)
    except ijson.JSONError as err:
        raise MeadowError(f"{path}: not a valid JSON array of records ({err})") from None
    finally:
        bar.close()
    for source in [*names, *scan.counts]:
        scan.lengths.setdefault(source, {k: [] for k in FIELDS})
        scan.counts.setdefault(source, 0)
    return scan


def _texts(path: Path, index: int, item: Any) -> dict[str, str]:
    if not isinstance(item, dict):
        raise MeadowError(f"{path}: record {index} is not an object")
    texts = {}
    for key in FIELDS:
        value = item.get(key, "")
        if not isinstance(value, str):
            raise MeadowError(f"{path}: record {index}: '{key}' is not a string")
        texts[key] = value
    return texts


def _measure(batch: list[tuple[str, dict[str, str]]], counter: TokenCounter, scan: RecordScan) -> None:
    if not batch:
        return
    flat = [texts[k] for _, texts in batch for k in FIELDS]
    nonempty = [i for i, t in enumerate(flat) if t]
    counts = [0] * len(flat)
    for i, n in zip(nonempty, counter.count([flat[i] for i in nonempty]), strict=True):
        counts[i] = n
    for j, (source, _) in enumerate(batch):
        fields = scan.lengths.setdefault(source, {k: [] for k in FIELDS})
        for k, key in enumerate(FIELDS):
            fields[key].append(counts[j * len(FIELDS) + k])
