"""`meadow stats BUILD_DIR`: one self-contained HTML report on a build, plus its charts as PNGs.

``BUILD_DIR/report/`` holds ``index.html`` (CSS inline, charts embedded as base64 data URIs, no
script, no external resource: it opens anywhere, offline, and can be mailed as one file), the
charts as PNG files, ``summary.md`` (the per-source table the dataset card embeds) and
``stats.json`` (the numbers behind the report). The folder is written beside the build in a
temporary folder and renamed into place, so a crash never leaves half a report.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from meadow import __version__
from meadow.errors import MeadowError
from meadow.io import atomic_dir, write_json_file
from meadow.schemas.manifest import Manifest
from meadow.schemas.outputs import JSON_NAME
from meadow.stats import plots
from meadow.stats.collect import RecordScan, load_build, scan_records
from meadow.stats.page import length_summary, page
from meadow.stats.summary import STEPS, Funnel, funnels, reason_step, summary_markdown
from meadow.stats.tokens import DEFAULT_TOKENIZER, token_counter

log = logging.getLogger(__name__)

REPORT_DIR = "report"
INDEX_NAME = "index.html"
"""Characters of a record's text shown in a table cell (the rest is cut, and says so)."""


@dataclass
class Report:
    path: Path
    """The report's index.html."""
    images: list[str]
    warnings: list[str]


def write_report(
    build_dir: str | Path,
    *,
    output: str | Path | None = None,
    tokenizer: str = DEFAULT_TOKENIZER,
    max_records: int | None = None,
    samples: int = 3,
    contamination_rows: int = 50,
    progress: bool = False,
) -> Report:
    """Write the report on ``build_dir`` into ``output`` (default ``build_dir/report``).

    ``max_records``: measure token lengths on about this many records (every k-th record of each
    source) instead of all. ``samples``: kept records shown per source. ``contamination_rows``:
    lines of contamination.jsonl shown.
    """
    build = load_build(build_dir, contamination_rows=contamination_rows)
    final = Path(output) if output is not None else build.path / REPORT_DIR
    _check_target(final, build.path)
    manifest = build.manifest
    rows = funnels(manifest)
    expected = sum(f.kept for f in rows)
    every = math.ceil(expected / max_records) if max_records and expected > max_records else 1
    counter = token_counter(tokenizer)
    layout = [(f.source, f.kept) for f in rows]
    scan = scan_records(
        build.path / JSON_NAME, counter, layout, every=every, samples=samples, progress=progress
    )
    warnings = _warnings(rows, scan)
    for w in warnings:
        log.warning("%s", w)

    images: dict[str, tuple[str, bytes]] = {
        "steps.png": ("Share of each source's rows kept and removed by each step", plots.steps_chart(rows)),
        "records.png": ("Records read and kept per source", plots.records_chart(rows)),
    }
    reasons = _reason_rows(manifest)
    if reasons:
        images["drop_reasons.png"] = ("Rows dropped per source and reason", plots.reasons_chart(reasons))
    per_benchmark = _contamination_by_benchmark(manifest)
    if any(per_benchmark.values()):
        images["contamination.png"] = (
            "Contaminated records removed per benchmark",
            plots.contamination_chart(per_benchmark),
        )
    if scan.measured:
        images["lengths.png"] = (
            f"Instruction, input and output length per source ({counter.unit})",
            plots.lengths_chart(scan.lengths, counter.unit),
        )
        totals = [t for s in scan.lengths for t in scan.totals(s)]
        images["total_lengths.png"] = (
            f"Histogram of record length ({counter.unit})",
            plots.total_chart(totals, counter.unit),
        )

    text = page(build, rows, reasons, per_benchmark, scan, counter.name, counter.unit, images, warnings)
    with atomic_dir(final) as tmp:
        for name, (_, data) in images.items():
            (tmp / name).write_bytes(data)
        (tmp / "summary.md").write_text(summary_markdown(manifest), encoding="utf-8")
        write_json_file(tmp / "stats.json", _stats_json(rows, scan, counter.name, counter.unit))
        (tmp / INDEX_NAME).write_text(text, encoding="utf-8")
    return Report(final / INDEX_NAME, list(images), warnings)


def _check_target(final: Path, build_dir: Path) -> None:
    """The report replaces ``final`` whole: refuse a folder that is not an earlier report."""
    if build_dir.resolve().is_relative_to(final.resolve()):
        raise MeadowError(f"{final}: the report would replace the build itself; name another folder")
    if final.exists() and not final.is_dir():
        raise MeadowError(f"{final}: exists and is not a folder; name a new folder for the report")
    if final.is_dir() and any(final.iterdir()) and not (final / INDEX_NAME).is_file():
        raise MeadowError(
            f"{final}: a folder that holds something other than a meadow stats report "
            f"(no {INDEX_NAME}); it would be replaced, so name a new or empty folder"
        )


# --- numbers ---------------------------------------------------------------------------------


def _warnings(rows: Sequence[Funnel], scan: RecordScan) -> list[str]:
    out = []
    for f in rows:
        if not f.consistent:
            out.append(
                f"{f.source}: the manifest's counts do not add up: {f.read:,} read, "
                f"{f.read - f.left()[-1]:,} removed by the steps, but {f.kept:,} kept"
            )
        found = scan.counts.get(f.source, 0)
        if found != f.kept:
            out.append(f"{f.source}: the manifest says {f.kept:,} kept, {JSON_NAME} holds {found:,}")
    known = {f.source for f in rows}
    for source, count in scan.counts.items():
        if source not in known:
            out.append(
                f"{JSON_NAME} holds {count:,} records of {source!r}, a source the manifest does not list"
            )
    return out


def _reason_rows(manifest: Manifest) -> list[tuple[str, str, str, int]]:
    """(source, reason, step, count) for every drop reason, in recipe then step order."""
    order = {s.key: i for i, s in enumerate(STEPS)}
    out = []
    for name, s in manifest.sources.items():
        reasons = [(name, r, reason_step(r), int(c)) for r, c in s.dropped.items() if c]
        out += sorted(reasons, key=lambda r: (order[r[2]], r[1]))
    return out


def _contamination_by_benchmark(manifest: Manifest) -> dict[str, dict[str, int]]:
    """benchmark -> source -> records removed, from each source's ``contaminated`` counts."""
    out: dict[str, dict[str, int]] = {}
    benchmarks = (manifest.decontamination or {}).get("benchmarks") or {}
    for name in benchmarks:
        out[name] = {}
    for source, s in manifest.sources.items():
        for bench, count in (s.contaminated or {}).items():
            if count:
                out.setdefault(bench, {})[source] = int(count)
    return out


def _stats_json(rows: Sequence[Funnel], scan: RecordScan, tokenizer: str, unit: str) -> dict[str, Any]:
    return {
        "meadow_version": __version__,
        "sources": {
            f.source: {"read": f.read, "removed": f.removed, "kept": f.kept, "left_after": f.left()}
            for f in rows
        },
        "lengths": {
            "tokenizer": tokenizer,
            "unit": unit,
            "every": scan.every,
            "records": scan.records,
            "measured": scan.measured,
            "sources": {
                s: {k: length_summary(v) for k, v in fields.items()} for s, fields in scan.lengths.items()
            },
        },
    }
