"""`meadow build`: plan -> map -> reduce -> write.

- plan: read and validate the recipe, resolve every source's files, load the benchmarks to
  decontaminate against (meadow.quality.decontaminate) and set up near dedup;
- map: with ``--workers`` or ``--executor ray``, every source's shards are read at once on the
  executor (meadow.build.shards: loader pass + per-record screen, meadow.build.screen); without,
  each source streams through this process in the reduce;
- reduce: per source in recipe order (meadow.build.select.run_source): exact dedup and the seeded
  subsample, rephrasing of passages in windows, near dedup against all kept before;
- write: the build folder with the typed manifest (meadow.build.write, meadow.build.manifest).

A record walks one way: raw file -> loader -> Record -> screen -> sample -> dedup -> write. The
per-record steps are the same code in both modes, so the outputs are the same bytes.
"""

from __future__ import annotations

import contextlib
import logging
import os
import resource
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from meadow.build import executors
from meadow.build.manifest import input_file, peak_rss_mib, steps
from meadow.build.manifest import manifest as make_manifest
from meadow.build.select import Rephrasing, on_error_of, run_source
from meadow.build.shards import Sharded, remove_work
from meadow.build.stats import SourceStats
from meadow.build.write import write_build
from meadow.errors import MeadowError
from meadow.quality import decontaminate, filters
from meadow.quality.near_dedup import NearDedupIndex
from meadow.records import Record
from meadow.schemas.manifest import Manifest
from meadow.schemas.recipe import find_recipe, load_recipe, resolve_paths
from meadow.schemas.run import RunOptions, run_options

log = logging.getLogger(__name__)


@dataclass
class BuildResult:
    out_dir: Path
    records: int
    manifest: Manifest


def build(
    recipe_path: str | Path,
    options: RunOptions | None = None,
    *,
    base_dir: Path | None = None,
    **flags: Any,
) -> BuildResult:
    """Run a recipe and write ``<output_dir>/<name>/``. Returns where, and the manifest.

    ``options`` are the run's flags (meadow.schemas.run.RunOptions); a script may pass them as
    keywords instead (``build(recipe, replay=True)``), validated the same way.

    ``replay``: take every LLM answer from the cache; a miss is an error (no model is asked).

    ``workers`` or ``executor``: read the sources in shards (meadow.build.shards) on ``executor``
    (``local``: a pool of ``workers`` processes; ``ray``: the Ray cluster at ``address``), with
    finished shards kept in ``<output_dir>/.work/<name>/`` so a rerun after a failure redoes only
    the rest; the folder is removed after the build unless ``keep_work``. Without either, the
    sources stream through this process. The outputs are the same byte for byte either way.
    """
    if options is None:
        options = run_options(**flags)
    elif flags:
        raise TypeError(f"build(): pass the flags in options or as keywords, not both ({', '.join(flags)})")
    started = time.perf_counter()

    # plan
    recipe_path = find_recipe(recipe_path)
    recipe = load_recipe(recipe_path)
    if options.replay:
        recipe.llm = recipe.llm.model_copy(update={"replay": True})
    base = base_dir or Path.cwd()
    out_root = Path(options.output_dir) if options.output_dir is not None else Path(recipe.output_dir)
    if not out_root.is_absolute():
        out_root = base / out_root
    final = out_root / recipe.name
    work = out_root / ".work" / recipe.name
    plan = {name: resolve_paths(name, entry, base) for name, entry in recipe.sources.items()}
    for name in recipe.sources:  # a bad filter setting (an unknown language) fails before any reading
        filters.build_filters(recipe.source_filters(name))
    decon = decontaminate.from_recipe(recipe.decontaminate, recipe.benchmarks, base, options.strict)
    nd = recipe.near_dedup if recipe.near_dedup is not None and recipe.near_dedup.enabled else None
    near = NearDedupIndex(nd.threshold, nd.shingle, nd.num_perm) if nd is not None else None

    stats: dict[str, SourceStats] = {}
    kept: list[Record] = []
    samples: dict[str, Any] = {}
    taken: dict[int, str] = {}
    sharded: Sharded | None = None
    with Rephrasing(recipe, base) as rephrasing, contextlib.ExitStack() as stack:
        # map
        if options.sharded:
            runner = executors.make(options)
            stack.callback(runner.close)
            sharded = Sharded(recipe, plan, options, decon, work, base, runner)
            rephrasing.spread(runner, work)
        # reduce
        for name, paths in plan.items():
            entry = recipe.sources[name]
            st = SourceStats(loader=entry.loader, n=entry.n, base=f"{base}{os.sep}", seed=recipe.seed)
            st.inputs = [input_file(p, base).model_dump() for p in paths]
            t0 = time.perf_counter()
            records = run_source(
                name,
                recipe,
                paths,
                st,
                taken,
                rephrasing,
                on_error=on_error_of(recipe, entry, options.strict),
                decon=decon,
                near=near,
                shards=sharded.parts(name) if sharded is not None else None,
                progress=options.progress,
            )
            st.sampled = len(records)
            st.seconds = time.perf_counter() - t0
            st.peak_rss_mib = peak_rss_mib()
            if not st.yielded and not entry.allow_empty:
                raise MeadowError(_empty_source(name, st))
            stats[name] = st
            kept.extend(records)
            if st.llm is not None:
                samples[name] = st.llm.pop("samples")
            log.debug("%s: read %d, kept %d", name, st.read, st.sampled)
        llm_info = rephrasing.info()

    # write
    manifest = make_manifest(recipe, recipe_path, stats, len(kept))
    if nd is not None and near is not None:
        manifest.near_dedup = {
            **nd.model_dump(mode="json", exclude={"enabled"}),
            **near.info(),
            "seconds": round(near.seconds, 3),
        }
    manifest.llm = llm_info or None
    manifest.executor = sharded.info if sharded is not None else None
    if decon is not None:
        manifest.decontamination = decon.report(lambda p: input_file(p, base).model_dump())
    if sharded is not None and sharded.info is not None:
        sharded.info["workers_peak_rss_mib"] = peak_rss_mib(resource.RUSAGE_CHILDREN)
    manifest.steps = steps(sum((st.step_seconds for st in stats.values()), Counter()))
    write_build(
        final,
        kept,
        manifest,
        samples=samples,
        dropped={name: st.dropped_samples() for name, st in stats.items() if st.dropped_records},
        contamination=[row for st in stats.values() for row in st.contamination]
        if decon is not None
        else None,
        started=started,
    )
    if sharded is not None and not options.keep_work:
        remove_work(work)
    return BuildResult(final, len(kept), manifest)


def _empty_source(name: str, st: SourceStats) -> str:
    """Why a source's loader gave no record, for the error that stops the build."""
    files = ", ".join(i["path"] for i in st.inputs)  # as the manifest names them
    if not st.read:
        why = "its files hold no row"
    else:
        reasons = ", ".join(f"{r} {c:,}" for r, c in st.dropped.most_common())
        why = f"the loader dropped all {st.read:,} rows it read ({reasons})"
    return (
        f"source {name!r} ({files}): {why}. The previous build is left as it was. If the source is "
        "meant to add nothing, set `allow_empty: true` on it in the recipe."
    )
