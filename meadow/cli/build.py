"""`meadow build`, `check`, `sources`, `recipe-schema` and `convert`: a recipe, its sources, its build."""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from meadow.cli import render
from meadow.cli.console import emit_json, fail, interrupted, out, show, shown
from meadow.errors import MeadowError, MissingInputError

if TYPE_CHECKING:
    from meadow.schemas.recipe import Recipe

RESUME = "Run the same command again to resume: the LLM answers received so far come from the answer cache"


def build(
    recipe: Annotated[Path, typer.Argument(help="Recipe YAML, e.g. recipes/demo.yaml.")],
    output_dir: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option("--output-dir", "-o", help="Write OUTPUT_DIR/<name>/, not the recipe's output_dir."),
    ] = None,
    strict: Annotated[
        bool,
        typer.Option(
            "--strict",
            help="Fail on the first malformed row, or benchmark question, instead of counting it.",
        ),
    ] = False,
    replay: Annotated[
        bool, typer.Option("--replay", help="Take every LLM answer from the cache; a miss is an error.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars or summary table.")] = False,
    workers: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option(
            "--workers",
            "-j",
            min=1,
            help="Read the sources in shards (one per input file; a large CORD-19 metadata.csv in N "
            "spans of rows) on N local processes; finished shards survive a failed build for the rerun.",
        ),
    ] = None,
    executor: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--executor",
            help="Where shards are read: local (a process pool of --workers) or ray (a Ray cluster).",
        ),
    ] = None,
    address: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--address", help="Ray cluster for --executor ray: auto (default), ray://HOST:PORT or HOST:PORT."
        ),
    ] = None,
    keep_work: Annotated[
        bool,
        typer.Option(
            "--keep-work", help="Keep the shards in OUTPUT_DIR/.work/<name>/ after a successful build."
        ),
    ] = False,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json", help="Print the output folder, record count and manifest as JSON, not the tables."
        ),
    ] = False,
) -> None:
    """Load every source of RECIPE, validate, rephrase, dedup, subsample and write the build.

    Output: <output_dir>/<name>/ holding merged_medical_meadow.json
    (medAlpaca's format), .parquet, manifest.json and README.md (the card).

    Paths in the recipe are relative to the working directory.

    Records failing the recipe's quality filters are dropped (filter_<name>);
    with benchmarks in the recipe, records holding one of their questions are
    dropped (contaminated) and listed in contamination.jsonl.

    Passages (flashcards, WikiDoc textbook) are rephrased by the recipe's llm backend;
    answers are cached, so an interrupted build resumes where it stopped.

    The previous build is replaced only when the new one is complete: after
    Ctrl-C (exit status 130) it is intact, and a rerun resumes.

    With --workers or --executor, the sources are read in shards in parallel
    and merged in file order: the output is byte-identical to a single-process
    build. A rerun after a failed or killed build reuses the finished shards
    whose inputs and settings did not change. Rephrasing is spread over the
    workers too (not with an llm budget), its answers merged into the one
    cache; dedup and subsampling run in this process.
    """
    from meadow.build import build as run_build
    from meadow.schemas.run import run_options

    try:
        options = run_options(
            output_dir=output_dir,
            strict=strict,
            replay=replay,
            progress=not quiet,
            workers=workers,
            executor=executor,
            address=address,
            keep_work=keep_work,
        )
    except MeadowError as err:
        fail(err)
    try:
        result = run_build(recipe, options)
    except MeadowError as err:
        fail(err)
    except KeyboardInterrupt:
        reused = "; the shards already read are reused" if options.sharded else ""
        interrupted(f"the previous build, if any, is intact. {RESUME}{reused}")
    if as_json:
        emit_json(
            {"out_dir": result.out_dir, "records": result.records, "manifest": result.manifest.to_json()}
        )
        return
    if not quiet:
        show(render.build_summary(result.manifest))
    out().print(f"wrote {result.records:,} records to {result.out_dir}", highlight=False)


def list_sources(
    loader: Annotated[
        Optional[str],  # noqa: UP045
        typer.Argument(help="A loader: show its options, license and an example recipe entry."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the loaders (or LOADER) as JSON.")] = False,
) -> None:
    """List the registered source loaders, what they produce and their license.

    With LOADER: its options (name, type, default, description), license,
    citation and an example recipe entry.
    """
    from meadow import sources

    specs = sources.registry()
    if loader is not None and loader not in specs:
        close = difflib.get_close_matches(loader, list(specs), n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        fail(MeadowError(f"unknown loader {loader!r}{hint} (loaders: {', '.join(specs)})"))
    if as_json:
        data = (
            render.loader_data(specs[loader]) if loader else [render.loader_data(s) for s in specs.values()]
        )
        emit_json(data)
    elif loader is not None:
        show(render.loader_detail(specs[loader]))
    else:
        out().print(render.sources_table(specs))


def recipe_schema(
    output: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option("--output", "-o", help="Write the schema to this file instead of printing it."),
    ] = None,
) -> None:
    """Print the JSON Schema of a recipe, for editors that complete and check YAML.

    The repository ships it as recipes/recipe.schema.json
    (`meadow recipe-schema -o recipes/recipe.schema.json` regenerates it); a
    recipe whose first line is `# yaml-language-server: $schema=recipe.schema.json`
    gets completion, hover help and checks in editors using the YAML language
    server (VS Code, Neovim, Helix...). Loader options are not in the schema:
    `meadow sources LOADER` lists them, `meadow check` validates them.
    """
    from meadow.io import atomic_write_text
    from meadow.schemas.recipe import recipe_schema as schema

    text = json.dumps(schema(), indent=2, ensure_ascii=False) + "\n"
    if output is None:
        typer.echo(text, nl=False)
        return
    atomic_write_text(output, text)
    out().print(f"wrote {output}", highlight=False)


def check(
    recipe: Annotated[Path, typer.Argument(help="Recipe YAML to validate.")],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the input files of each source and benchmark as JSON.")
    ] = False,
) -> None:
    """Validate RECIPE and list the input files of each source and benchmark, without building.

    Exits with status 1 when the recipe is invalid or any source or benchmark has no input file.
    """
    from meadow.schemas.recipe import load_recipe

    try:
        r = load_recipe(recipe)
    except MeadowError as err:
        fail(err)
    entries, hints = _inputs(r)
    missing = sum(e["missing"] is not None for e in entries)
    kinds = "sources and benchmarks" if r.benchmarks else "sources"
    if as_json:
        emit_json(render.check_data(recipe, entries, hints))
    else:
        show(render.check_lines(entries, shown))
    if missing:  # what to do is the same for every missing input: said once
        todo = "".join(f"; {hint}" for hint in hints[:1])
        fail(MeadowError(f"{recipe}: {missing} of {len(entries)} {kinds} have no input file{todo}"))
    if not as_json:
        out().print(f"{recipe}: valid, every one of its {kinds} has its input files", highlight=False)


def _inputs(recipe: Recipe) -> tuple[list[dict[str, Any]], list[str]]:
    """Each source and benchmark of ``recipe`` with its input files, or why it has none; and what
    to do about the missing ones (each distinct hint once)."""
    from meadow.schemas.recipe import benchmark_paths, resolve_paths

    entries: list[dict[str, Any]] = []
    hints: list[str] = []
    checks: list[tuple[str, dict[str, Any], Callable[[], list[Path]]]] = [
        (n, {"kind": "source", "loader": e.loader, "n": e.n}, partial(resolve_paths, n, e))
        for n, e in recipe.sources.items()
    ]
    checks += [
        (n, {"kind": "benchmark", "benchmark": e.kind}, partial(benchmark_paths, n, e, Path.cwd()))
        for n, e in recipe.benchmarks.items()
    ]
    for name, what, resolve in checks:
        try:
            entries.append({"name": name, **what, "files": resolve(), "missing": None})
        except MissingInputError as err:  # paths are relative to the working directory here
            entries.append({"name": name, **what, "files": [], "missing": err.short})
            hints += [err.hint] if err.hint not in hints else []
        except MeadowError as err:
            entries.append({"name": name, **what, "files": [], "missing": str(err)})
    return entries, hints


def convert(
    recipe: Annotated[Path, typer.Argument(help="Recipe YAML whose passage sources to rephrase.")],
    source: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Option("--source", "-s", help="Only this source (repeatable). Default: every passage source."),
    ] = None,
    output: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(
            "--output",
            "-o",
            help="Records JSONL. Default: <output_dir>/<name>.rephrased.jsonl, beside the build folder.",
        ),
    ] = None,
    replay: Annotated[
        bool, typer.Option("--replay", help="Take every LLM answer from the cache; a miss is an error.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars or summary.")] = False,
) -> None:
    """Rephrase the passages of RECIPE (flashcards, WikiDoc textbook) into Q/A records.

    Same model, prompts, ranking, n and cache as meadow build:
    a later build reuses every answer. Sources that give ready records are
    not read; a recipe with no passage source is an error.

    The records go to <output_dir>/<name>.rephrased.jsonl (not into the
    build folder <output_dir>/<name>/, which the next build replaces).

    The progress bar shows requests, cache hits, failures and tokens.
    """
    from meadow.build.convert import convert as run_convert

    try:
        path, stats = run_convert(recipe, only=source, output=output, replay=replay, progress=not quiet)
    except MeadowError as err:
        fail(err)
    except KeyboardInterrupt:
        interrupted(f"nothing was written. {RESUME}")
    if not quiet:
        out().print(render.convert_table(stats))
    records = sum(s["sampled"] for s in stats.values())
    out().print(f"wrote {records:,} records to {path}", highlight=False)
