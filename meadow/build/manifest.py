"""The typed manifest of a build (meadow.schemas.manifest), made from what the build counted."""

from __future__ import annotations

import contextlib
import hashlib
import platform
import resource
import sys
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path

from meadow import __version__
from meadow.build.stats import SourceStats
from meadow.io import file_info
from meadow.schemas.manifest import InputFile, Manifest, SourceReport, Totals
from meadow.schemas.recipe import Recipe

VERSIONED = (
    "pydantic",
    "pyarrow",
    "lxml",
    "ijson",
    "py7zr",
    "markdownify",
    "beautifulsoup4",
    "py3langid",
    "datasketch",
    "numpy",
)
"""What reads the inputs and what decides drops (language id, near-dedup permutations, n-gram hashes)."""


def input_file(path: Path, base: Path) -> InputFile:
    """An input file as the manifest names it: relative to ``base`` where it lies below it."""
    try:
        shown = str(path.relative_to(base))
    except ValueError:
        shown = str(path)
    return InputFile(path=shown, **file_info(path))


def source_report(st: SourceStats) -> SourceReport:
    near = st.near_duplicates is not None
    return SourceReport(
        loader=st.loader,
        inputs=st.inputs,
        read=st.read,
        dropped=dict(sorted(st.dropped.items())),
        dropped_total=sum(st.dropped.values()),
        drop_examples=st.examples(),
        duplicates=st.duplicates,
        duplicate_of=dict(sorted(st.duplicate_of.items())),
        near_duplicates=st.near_duplicates,
        near_duplicate_of=dict(sorted(st.near_duplicate_of.items())) if near else None,
        near_dedup_short=st.near_dedup_short or None,
        unique=st.unique,
        n=st.n,
        sampled=st.sampled,
        contaminated=None if st.contaminated is None else dict(sorted(st.contaminated.items())),
        llm=st.llm,
        seconds=round(st.seconds, 3),
        steps=steps(st.step_seconds),
        peak_rss_mib=st.peak_rss_mib,
    )


STEP_ORDER = ("load", "filter", "decontaminate", "sample", "rephrase", "near_dedup", "write")


def steps(seconds: Mapping[str, float]) -> dict[str, float]:
    """Seconds per step, in the order a record meets them, rounded to milliseconds."""
    rounded = {k: round(seconds.get(k, 0.0), 3) for k in STEP_ORDER}
    return {k: v for k, v in rounded.items() if v}


def peak_rss_mib(who: int = resource.RUSAGE_SELF) -> float:
    """Peak resident memory of this process (or of its finished children), in MiB."""
    kib = resource.getrusage(who).ru_maxrss  # KiB on Linux (bytes on macOS)
    return round(kib / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in VERSIONED:
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[dist] = metadata.version(dist)
    return out


def manifest(recipe: Recipe, recipe_path: Path, stats: dict[str, SourceStats], total: int) -> Manifest:
    """The manifest's counts; the build adds the optional sections, the outputs and the time."""
    near = any(s.near_duplicates is not None for s in stats.values())
    return Manifest(
        meadow_version=__version__,
        recipe_path=str(recipe_path),
        recipe_sha256=hashlib.sha256(recipe_path.read_bytes()).hexdigest(),
        recipe=recipe.model_dump(mode="json"),
        sources={name: source_report(st) for name, st in stats.items()},
        totals=Totals(
            read=sum(s.read for s in stats.values()),
            dropped=sum(sum(s.dropped.values()) for s in stats.values()),
            duplicates=sum(s.duplicates for s in stats.values()),
            near_duplicates=sum(s.near_duplicates or 0 for s in stats.values()) if near else None,
            unique=sum(s.unique for s in stats.values()),
            records=total,
        ),
        versions=versions(),
        platform=sys.platform,
    )
