"""`meadow build`: recipe -> load -> validate -> exact dedup -> seeded subsample -> outputs.

Each source streams through its loader; every row read is counted as dropped (with its
reason), duplicate, or unique, and unique records compete for the source's ``n`` places
by the seeded hash rank of their id (meadow.sample). Exact duplicates are settled against
what is kept, so memory is bounded by the kept records, not by the rows read.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import platform
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from tqdm import tqdm

from meadow import __version__, sources
from meadow.errors import InputError, MeadowError
from meadow.output import (
    CARD_NAME,
    JSON_NAME,
    MANIFEST_NAME,
    PARQUET_NAME,
    atomic_dir,
    dataset_card,
    file_info,
    write_json,
    write_json_file,
    write_parquet,
)
from meadow.recipe import Recipe, load_recipe, resolve_paths
from meadow.records import Passage, Record
from meadow.sample import Sample, content_key, rank
from meadow.sources import Drop

log = logging.getLogger(__name__)

DROP_EXAMPLES = 5
"""How many example locations the manifest keeps per drop reason."""


@dataclass
class SourceStats:
    loader: str
    n: int | str
    inputs: list[dict[str, Any]] = field(default_factory=list)
    read: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    drop_examples: dict[str, list[str]] = field(default_factory=dict)
    duplicates: int = 0
    duplicate_of: Counter[str] = field(default_factory=Counter)
    unique: int = 0
    sampled: int = 0
    seconds: float = 0.0
    base: str = ""  # the folder recipe paths are relative to, with a trailing separator

    def drop(self, d: Drop) -> None:
        self.dropped[d.reason] += 1
        examples = self.drop_examples.setdefault(d.reason, [])
        if len(examples) < DROP_EXAMPLES:
            at = d.where.removeprefix(self.base)  # paths as the recipe gives them
            examples.append(f"{at}: {d.detail}" if d.detail else at)

    def to_json(self) -> dict[str, Any]:
        return {
            "loader": self.loader,
            "inputs": self.inputs,
            "read": self.read,
            "dropped": dict(sorted(self.dropped.items())),
            "dropped_total": sum(self.dropped.values()),
            "drop_examples": dict(sorted(self.drop_examples.items())),
            "duplicates": self.duplicates,
            "duplicate_of": dict(sorted(self.duplicate_of.items())),
            "unique": self.unique,
            "n": self.n,
            "sampled": self.sampled,
            "seconds": round(self.seconds, 3),
        }


@dataclass
class BuildResult:
    out_dir: Path
    records: int
    manifest: dict[str, Any]


def build(
    recipe_path: str | Path,
    *,
    output_dir: str | Path | None = None,
    base_dir: Path | None = None,
    strict: bool = False,
    progress: bool = True,
) -> BuildResult:
    """Run a recipe and write ``<output_dir>/<name>/``. Returns where, and the manifest."""
    started = time.perf_counter()
    recipe_path = Path(recipe_path)
    recipe = load_recipe(recipe_path)
    base = base_dir or Path.cwd()
    out_root = Path(output_dir) if output_dir is not None else Path(recipe.output_dir)
    if not out_root.is_absolute():
        out_root = base / out_root
    final = out_root / recipe.name

    # Resolve every path and refuse passage-only sources before reading anything.
    passage_only = [
        f"{n!r} ({e.loader})"
        for n, e in recipe.sources.items()
        if sources.get(e.loader).produces == "passages" or e.parsed_options().yields_passages(e.patterns())
    ]
    if passage_only:
        raise _needs_rephrasing(", ".join(passage_only))
    plan = []
    for name, entry in recipe.sources.items():
        plan.append((name, entry, sources.get(entry.loader), resolve_paths(name, entry, base)))

    taken: dict[int, str] = {}
    stats: dict[str, SourceStats] = {}
    kept: list[Record] = []
    for name, entry, spec, paths in plan:
        on_error = "fail" if strict else (entry.on_error or recipe.on_error)
        st = SourceStats(loader=entry.loader, n=entry.n, base=f"{base}{os.sep}")
        st.inputs = [_input_info(p, base) for p in paths]
        t0 = time.perf_counter()
        records = _run_source(name, entry, spec, paths, recipe, on_error, st, taken, progress)
        st.sampled = len(records)
        st.seconds = time.perf_counter() - t0
        stats[name] = st
        kept.extend(records)
        log.debug("%s: read %d, kept %d", name, st.read, st.sampled)

    manifest = _manifest(recipe, recipe_path, stats, len(kept))
    with atomic_dir(final) as tmp:
        write_json(tmp / JSON_NAME, kept)
        write_parquet(tmp / PARQUET_NAME, kept)
        (tmp / CARD_NAME).write_text(dataset_card(manifest, sources.registry()), encoding="utf-8")
        manifest["outputs"] = {
            JSON_NAME: {**file_info(tmp / JSON_NAME), "records": len(kept)},
            PARQUET_NAME: {**file_info(tmp / PARQUET_NAME), "records": len(kept)},
            CARD_NAME: file_info(tmp / CARD_NAME),
        }
        manifest["seconds"] = round(time.perf_counter() - started, 3)
        write_json_file(tmp / MANIFEST_NAME, manifest)
    return BuildResult(final, len(kept), manifest)


def _run_source(
    name: str,
    entry: Any,
    spec: sources.SourceSpec,
    paths: list[Path],
    recipe: Recipe,
    on_error: str,
    st: SourceStats,
    taken: dict[int, str],
    progress: bool,
) -> list[Record]:
    """Stream one source into its sample; ``taken`` maps content kept by earlier sources to them."""
    options = entry.parsed_options()
    sample: Sample[Record] = Sample(None if entry.n == "all" else entry.n, taken)
    dedup = recipe.dedup == "exact"
    # disable=None: bars only on a terminal, never in logs or CI output.
    bar = tqdm(desc=name, unit=" rows", disable=None if progress else True, leave=False, mininterval=0.5)
    try:
        for item in spec.load(paths, options):
            st.read += 1
            if not st.read % 1024:
                bar.update(1024)
            if isinstance(item, Drop):
                if item.malformed and on_error == "fail":
                    raise MeadowError(
                        f"{item.where}: {item.detail or item.reason} (source {name!r}; on_error: fail)"
                    )
                st.drop(item)
                continue
            if isinstance(item, Passage):
                raise _needs_rephrasing(f"{name!r} ({entry.loader}, first at {item.id})")
            key = content_key(item.instruction, item.input, item.output) if dedup else None
            outcome = sample.offer(rank(recipe.seed, item.id), item.id, key, item)
            if outcome == "duplicate":
                st.duplicates += 1
                st.duplicate_of[taken.get(key, name) if key is not None else name] += 1
            elif outcome == "duplicate_id":
                st.drop(Drop("duplicate_id", item.id, "an id already in this source's sample"))
    except InputError as err:
        raise MeadowError(f"{err} (source {name!r}, loader {entry.loader!r})") from None
    finally:
        bar.update(st.read - bar.n)
        bar.close()
    st.unique = st.read - sum(st.dropped.values()) - st.duplicates
    for key in sample.content_keys():
        taken[key] = name
    return sorted(sample.items(), key=lambda r: r.id)


def _needs_rephrasing(which: str) -> MeadowError:
    return MeadowError(
        f"source(s) {which} yield passages that an LLM must rephrase into question/answer "
        "pairs, and the rephrasing step (meadow.convert) is not available yet; nothing was "
        "skipped and no output was written. Remove these sources from (a copy of) the recipe, "
        "or give a layout that already holds question/answer pairs."
    )


def _input_info(path: Path, base: Path) -> dict[str, Any]:
    try:
        shown = str(path.relative_to(base))
    except ValueError:
        shown = str(path)
    return {"path": shown, **file_info(path)}


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in ("pydantic", "pyarrow", "lxml", "ijson", "py7zr"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[dist] = metadata.version(dist)
    return out


def _manifest(recipe: Recipe, recipe_path: Path, stats: dict[str, SourceStats], total: int) -> dict[str, Any]:
    per_source = {name: st.to_json() for name, st in stats.items()}
    return {
        "meadow_version": __version__,
        "recipe_path": str(recipe_path),
        "recipe_sha256": hashlib.sha256(recipe_path.read_bytes()).hexdigest(),
        "recipe": recipe.model_dump(mode="json"),
        "sources": per_source,
        "totals": {
            "read": sum(s.read for s in stats.values()),
            "dropped": sum(sum(s.dropped.values()) for s in stats.values()),
            "duplicates": sum(s.duplicates for s in stats.values()),
            "unique": sum(s.unique for s in stats.values()),
            "records": total,
        },
        "versions": _versions(),
        "platform": sys.platform,
    }
