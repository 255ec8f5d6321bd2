"""The `meadow` command line: each subcommand maps to one plain function."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table

from meadow import __version__
from meadow.errors import MeadowError

app = typer.Typer(
    name="meadow",
    help="Build Medical Meadow (the medAlpaca instruction data) from the raw upstream sources.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"meadow {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        Optional[bool],  # noqa: UP045 - typer needs Optional on py3.10
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit."),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log debug messages.")] = False,
) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(message)s",
        handlers=[RichHandler(console=console, show_path=False, show_time=False)],
    )


def _fail(err: MeadowError) -> None:
    console.print(f"[bold red]error:[/] {err}", highlight=False, soft_wrap=True)
    raise typer.Exit(1)


@app.command()
def build(
    recipe: Annotated[Path, typer.Argument(help="Recipe YAML, e.g. recipes/demo.yaml.")],
    output_dir: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option("--output-dir", "-o", help="Write OUTPUT_DIR/<name>/, not the recipe's output_dir."),
    ] = None,
    strict: Annotated[
        bool, typer.Option("--strict", help="Fail on the first malformed row instead of counting it.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars or summary table.")] = False,
) -> None:
    """Load every source of RECIPE, validate, dedup and subsample, and write the build.

    Writes <output_dir>/<name>/merged_medical_meadow.json (medAlpaca's training format),
    merged_medical_meadow.parquet, manifest.json and README.md (dataset card). Paths in the
    recipe are relative to the working directory. The previous build is replaced only when
    the new one is complete.
    """
    from meadow.build import build as run_build

    try:
        result = run_build(recipe, output_dir=output_dir, strict=strict, progress=not quiet)
    except MeadowError as err:
        _fail(err)
        return
    if not quiet:
        _summary(result.manifest)
    typer.echo(f"wrote {result.records} records to {result.out_dir}")


def _summary(manifest: dict) -> None:
    table = Table(title="meadow build", show_lines=False)
    for col in ("source", "read", "dropped", "duplicates", "candidates", "n", "kept", "seconds"):
        table.add_column(col, justify="left" if col == "source" else "right")
    for name, s in manifest["sources"].items():
        table.add_row(
            name,
            f"{s['read']:,}",
            f"{s['dropped_total']:,}",
            f"{s['duplicates']:,}",
            f"{s['candidates']:,}",
            str(s["n"]),
            f"{s['sampled']:,}",
            f"{s['seconds']:.2f}",
        )
    t = manifest["totals"]
    table.add_row(
        "total",
        f"{t['read']:,}",
        f"{t['dropped']:,}",
        f"{t['duplicates']:,}",
        f"{t['candidates']:,}",
        "",
        f"{t['records']:,}",
        f"{manifest['seconds']:.2f}",
        style="bold",
    )
    console.print(table)
    reasons = {(name, r): c for name, s in manifest["sources"].items() for r, c in s["dropped"].items()}
    if reasons:
        console.print(
            "dropped by reason: " + ", ".join(f"{n}/{r} {c:,}" for (n, r), c in reasons.items()),
            highlight=False,
            soft_wrap=True,
        )


@app.command("sources")
def list_sources() -> None:
    """List the registered source loaders, what they produce and their license."""
    from meadow import sources

    table = Table(title="meadow sources")
    for col in ("loader", "produces", "license", "summary"):
        table.add_column(col)
    for name, spec in sources.registry().items():
        produces = spec.produces + (" (test only)" if spec.test_only else "")
        table.add_row(name, produces, spec.license, spec.summary)
    Console().print(table)


@app.command()
def check(recipe: Annotated[Path, typer.Argument(help="Recipe YAML to validate.")]) -> None:
    """Validate RECIPE and show which input files each source would read, without building."""
    from meadow.recipe import load_recipe, resolve_paths

    try:
        r = load_recipe(recipe)
        for name, entry in r.sources.items():
            paths = resolve_paths(name, entry)
            typer.echo(
                f"{name}: {entry.loader}, n={entry.n}, {len(paths)} file(s): "
                + ", ".join(str(p) for p in paths)
            )
    except MeadowError as err:
        _fail(err)
    typer.echo(f"{recipe}: ok")


if __name__ == "__main__":  # pragma: no cover
    app()
