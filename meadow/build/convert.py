"""`meadow convert`: rephrase a recipe's passages into records, without the rest of the build.

Reads the sources of a recipe that yield passages (the Anki flashcards, the WikiDoc living
textbook), rephrases them exactly as `meadow build` would (same ranking, same ``n``, same
cache, so a later build reuses every answer), and writes the records as JSON Lines, by default
to ``<output_dir>/<name>.rephrased.jsonl``: beside the build folder, which a build replaces whole.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from meadow import sources
from meadow.build.manifest import source_report
from meadow.build.select import Rephrasing, on_error_of, run_source
from meadow.build.stats import SourceStats
from meadow.errors import MeadowError
from meadow.io import atomic_file
from meadow.quality import decontaminate
from meadow.schemas.recipe import SourceEntry, load_recipe, resolve_paths


def _yields_passages(entry: SourceEntry) -> bool:
    """Whether a source gives passages for the LLM (a wikidoc patient-information file does not)."""
    produces = sources.get(entry.loader).produces
    if produces == "records or passages":
        return entry.parsed_options().yields_passages(entry.patterns())
    return produces == "passages"


def convert(
    recipe_path: str | Path,
    *,
    only: list[str] | None = None,
    output: str | Path | None = None,
    replay: bool = False,
    progress: bool = True,
) -> tuple[Path, dict[str, Any]]:
    """Rephrase the passage sources of a recipe; returns the output file and per-source stats."""
    recipe = load_recipe(recipe_path)
    if replay:
        recipe.llm = recipe.llm.model_copy(update={"replay": True})
    base = Path.cwd()
    unknown = sorted(set(only or []) - set(recipe.sources))
    if unknown:
        raise MeadowError(
            f"{recipe_path}: no source named {', '.join(unknown)} (sources: {', '.join(recipe.sources)})"
        )
    chosen = [n for n in recipe.sources if not only or n in only]
    names = [n for n in chosen if _yields_passages(recipe.sources[n])]
    if not names:
        which = "none of the chosen sources" if only else "no source of the recipe"
        give = "gives" if len(chosen) == 1 else "give"
        raise MeadowError(
            f"{recipe_path}: {which} yields passages to rephrase: {', '.join(chosen)} {give} ready "
            "records, which `meadow build` reads as they are. convert is for flashcards and WikiDoc "
            "textbook sections (`meadow sources` shows what each loader produces)"
        )
    # beside the build folder, not in it: the next build replaces <output_dir>/<name>/ whole
    out = Path(output) if output else Path(recipe.output_dir) / f"{recipe.name}.rephrased.jsonl"
    # the build's checks, so that the same passages are rephrased as a build would
    decon = decontaminate.from_recipe(recipe.decontaminate, recipe.benchmarks, base)
    stats: dict[str, Any] = {}
    records = []
    with Rephrasing(recipe, base) as rephrasing:
        for name in names:
            entry = recipe.sources[name]
            st = SourceStats(loader=entry.loader, n=entry.n, base=f"{base}{os.sep}", seed=recipe.seed)
            kept = run_source(
                name,
                recipe,
                resolve_paths(name, entry, base),
                st,
                {},
                rephrasing,
                on_error=on_error_of(recipe, entry, strict=False),
                decon=decon,
                progress=progress,
            )
            records.extend(kept)
            st.sampled = len(kept)
            info = source_report(st).to_json()
            info.get("llm", {}).pop("samples", None)
            stats[name] = info
    with atomic_file(out) as f:
        for r in records:
            f.write(json.dumps({**r.to_alpaca(), "meta": r.meta}, ensure_ascii=False) + "\n")
    return out, stats
