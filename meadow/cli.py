"""The `meadow` command line: each subcommand maps to one plain function."""

from __future__ import annotations

import logging
import sys
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
# Wide enough for the summary table when stderr is a log file or a pipe (rich assumes 80).
console = Console(stderr=True, width=None if sys.stderr.isatty() else 120)


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
    replay: Annotated[
        bool, typer.Option("--replay", help="Take every LLM answer from the cache; a miss is an error.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars or summary table.")] = False,
) -> None:
    """Load every source of RECIPE, validate, rephrase, dedup, subsample and write the build.

    Output: <output_dir>/<name>/ holding merged_medical_meadow.json
    (medAlpaca's format), .parquet, manifest.json and README.md (the card).

    Paths in the recipe are relative to the working directory.

    Passages (flashcards, WikiDoc textbook) are rephrased by the recipe's llm backend;
    answers are cached, so an interrupted build resumes where it stopped.

    The previous build is replaced only when the new one is complete.
    """
    from meadow.build import build as run_build

    try:
        result = run_build(recipe, output_dir=output_dir, strict=strict, replay=replay, progress=not quiet)
    except MeadowError as err:
        _fail(err)
        return
    if not quiet:
        _summary(result.manifest)
    console.print(f"wrote {result.records:,} records to {result.out_dir}", highlight=False)


def _summary(manifest: dict) -> None:
    table = Table(title="meadow build")
    table.add_column("source", overflow="fold", min_width=12)
    for col in ("read", "dropped", "dups", "unique", "n", "kept", "s"):
        table.add_column(col, justify="right")
    for name, s in manifest["sources"].items():
        table.add_row(
            name,
            f"{s['read']:,}",
            f"{s['dropped_total']:,}",
            f"{s['duplicates']:,}",
            f"{s['unique']:,}",
            str(s["n"]),
            f"{s['sampled']:,}",
            f"{s['seconds']:.1f}",
        )
    t = manifest["totals"]
    table.add_row(
        "total",
        f"{t['read']:,}",
        f"{t['dropped']:,}",
        f"{t['duplicates']:,}",
        f"{t['unique']:,}",
        "",
        f"{t['records']:,}",
        f"{manifest['seconds']:.1f}",
        style="bold",
    )
    console.print(table)
    drops = Table(title="dropped rows by reason (manifest.json has example locations)")
    for col in ("source", "reason", "rows"):
        drops.add_column(col, justify="right" if col == "rows" else "left", no_wrap=col != "reason")
    for name, s in manifest["sources"].items():
        for reason, count in s["dropped"].items():
            drops.add_row(name, reason, f"{count:,}")
    if drops.row_count:
        console.print(drops)


@app.command("sources")
def list_sources() -> None:
    """List the registered source loaders, what they produce and their license."""
    from meadow import sources

    table = Table(title="meadow sources")
    table.add_column("loader", no_wrap=True)
    for col in ("produces", "license", "summary"):
        table.add_column(col)
    for name, spec in sources.registry().items():
        produces = spec.produces + (" (test only)" if spec.test_only else "")
        table.add_row(name, produces, spec.license, spec.summary)
    Console(width=None if sys.stdout.isatty() else 160).print(table)


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


@app.command()
def check(recipe: Annotated[Path, typer.Argument(help="Recipe YAML to validate.")]) -> None:
    """Validate RECIPE and list the input files of each source, without building.

    Exits with status 1 when the recipe is invalid or any source has no input file.
    """
    from meadow.recipe import load_recipe, resolve_paths

    try:
        r = load_recipe(recipe)
    except MeadowError as err:
        _fail(err)
        return
    missing = 0
    for name, entry in r.sources.items():
        try:
            paths = resolve_paths(name, entry)
        except MeadowError as err:
            missing += 1
            console.print(f"[red]missing[/] {err}", highlight=False, soft_wrap=True)
            continue
        shown = ", ".join(_shown(p) for p in paths[:3]) + (
            f", ... ({len(paths)} files)" if len(paths) > 3 else ""
        )
        console.print(f"[green]ok[/] {name}: loader {entry.loader}, n={entry.n}: {shown}", highlight=False)
    if missing:
        _fail(MeadowError(f"{recipe}: {missing} of {len(r.sources)} sources have no input file"))
    console.print(f"{recipe}: valid, every source has its input files", highlight=False)


@app.command()
def convert(
    recipe: Annotated[Path, typer.Argument(help="Recipe YAML whose passage sources to rephrase.")],
    source: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Option("--source", "-s", help="Only this source (repeatable). Default: every passage source."),
    ] = None,
    output: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option("--output", "-o", help="Records JSONL. Default: <output_dir>/<name>/rephrased.jsonl."),
    ] = None,
    replay: Annotated[
        bool, typer.Option("--replay", help="Take every LLM answer from the cache; a miss is an error.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars or summary.")] = False,
) -> None:
    """Rephrase the passages of RECIPE (flashcards, WikiDoc textbook) into Q/A records.

    Same model, prompts, ranking, n and cache as meadow build:
    a later build reuses every answer.

    The progress bar shows requests, cache hits, failures and tokens.
    """
    from meadow.convert.command import convert as run_convert

    try:
        out, stats = run_convert(recipe, only=source, output=output, replay=replay, progress=not quiet)
    except MeadowError as err:
        _fail(err)
        return
    if not quiet:
        table = Table(title="meadow convert")
        table.add_column("source", overflow="fold", min_width=12)
        for col in ("passages", "accepted", "failed", "requests", "cached", "tokens", "cost $"):
            table.add_column(col, justify="right")
        for name, s in stats.items():
            llm = s.get("llm", {})
            table.add_row(
                name,
                f"{llm.get('passages', 0):,}",
                f"{llm.get('accepted', 0):,}",
                f"{sum(llm.get('failed', {}).values()):,}",
                f"{llm.get('requests', 0):,}",
                f"{llm.get('cache_hits', 0):,}",
                f"{llm.get('prompt_tokens', 0) + llm.get('completion_tokens', 0):,}",
                f"{llm.get('cost_usd', 0):.4f}",
            )
        console.print(table)
    records = sum(s["sampled"] for s in stats.values())
    console.print(f"wrote {records:,} records to {out}", highlight=False)


@app.command()
def fetch(
    recipe: Annotated[Path, typer.Argument(help="Recipe YAML whose sources to fetch, e.g. recipes/v1.yaml.")],
    only: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Option("--only", help="Fetch only this source (a name in the recipe); repeatable."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List what would be downloaded, with sizes; write nothing.")
    ] = False,
    raw_dir: Annotated[
        Path, typer.Option("--raw-dir", help="Where <source>/ folders and sources.lock go.")
    ] = Path("data/raw"),
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    """Download the raw files every source of RECIPE needs into RAW_DIR/<source>/.

    Downloads resume (a .part file continues where it stopped).

    Every file is verified by size and sha256 against the recipe or
    RAW_DIR/sources.lock (the first download records them), skipped when
    complete, and renamed into place only when good.

    Archives are unpacked; each source folder gets a SOURCE.md (license,
    citation, origins).

    Hugging Face: HF_ENDPOINT and HF_TOKEN (or `hf auth login`) are honoured.

    Kaggle (CORD-19): ~/.kaggle/kaggle.json or KAGGLE_USERNAME/KAGGLE_KEY.

    Files only a person can download (Google Drive, AnkiWeb) are listed with
    where to get them and where to put them.

    Exit status 1: a download failed or a manual download is still needed.
    """
    from meadow.fetch import fetch as run_fetch
    from meadow.fetch import human_size

    try:
        report = run_fetch(recipe, only=only, raw_dir=raw_dir, dry_run=dry_run, progress=not quiet)
    except MeadowError as err:
        _fail(err)
        return
    table = Table(title="meadow fetch" + (" --dry-run" if dry_run else ""))
    table.add_column("source", overflow="fold")
    table.add_column("file", overflow="fold")
    table.add_column("status", no_wrap=True)
    table.add_column("size", justify="right", no_wrap=True)
    table.add_column("detail", overflow="fold")
    colour = {"error": "red", "manual": "yellow", "no entry": "yellow", "would download": "cyan"}
    for item in report.items:
        style = colour.get(item.status, "green")
        detail = item.detail if item.status not in ("error", "manual", "no entry") else "(see below)"
        table.add_row(
            item.source,
            item.key.split("/", 1)[1] or "-",
            f"[{style}]{item.status}[/]",
            human_size(item.size) if item.size is not None or item.status != "manual" else "",
            detail,
        )
    console.print(table)
    for warning in report.warnings:
        console.print(f"[yellow]warning:[/] {warning}", highlight=False, soft_wrap=True)
    for item in report.manual:
        console.print(f"[yellow]{item.key}:[/] {item.detail}", highlight=False, soft_wrap=True)
    for item in report.errors:
        console.print(f"[red]{item.key}:[/] {item.detail}", highlight=False, soft_wrap=True)
    if dry_run:
        known = [i.size for i in report.items if i.status == "would download"]
        total = sum(s for s in known if s is not None)
        unknown = sum(s is None for s in known)
        sizes = human_size(total) + (f" plus {unknown} of unknown size" if unknown else "")
        if unknown == len(known):
            sizes = "sizes unknown"
        console.print(f"{len(known)} file(s) to download, {sizes}", highlight=False)
        return
    if report.errors or report.manual:
        _fail(
            MeadowError(
                f"{len(report.errors)} download(s) failed, {len(report.manual)} file(s) need a manual "
                f"download (see above); what is done is kept and recorded in {report.lock_path}"
            )
        )
    console.print(f"every file is in place and verified; checksums in {report.lock_path}", highlight=False)


@app.command()
def push(
    build_dir: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Argument(help="Build folder (or its recipe YAML); default: the only build in data/processed."),
    ] = None,
    repo_id: Annotated[str, typer.Option("--repo-id", help="Dataset repository on the Hub: ORG/NAME.")] = ...,
    private: Annotated[bool, typer.Option("--private", help="Create the repository private.")] = False,
    revision: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--revision", help="Branch to commit to (created if missing); default: main."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Stage and list the files and commit; upload nothing.")
    ] = False,
    stage_dir: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option("--stage", help="Write the repository folder to this folder and upload nothing."),
    ] = None,
) -> None:
    """Upload a build to the Hugging Face Hub as a dataset repository, in one commit.

    The build is first checked against its manifest.json (sizes and sha256 of
    every output); a half-written or edited build is refused.

    The repository holds: README.md (dataset card with YAML metadata and one
    config per source, `default` = the merged set), the merged Parquet and
    JSON, data/<source>/train-00000-of-00001.parquet, manifest.json,
    recipe.yaml and LICENSE.md.

    --stage DIR writes exactly that folder; --dry-run lists it. Neither needs
    a token nor uploads anything.

    Token: HF_TOKEN, else the one saved by `hf auth login`. HF_ENDPOINT is
    honoured. The token is never written or logged.
    """
    from meadow.fetch import human_size
    from meadow.push import push as run_push

    try:
        result = run_push(
            build_dir,
            repo_id=repo_id,
            private=private,
            revision=revision,
            dry_run=dry_run,
            stage_dir=stage_dir,
        )
    except MeadowError as err:
        _fail(err)
        return
    staged = result.staged
    table = Table(title=f"datasets/{repo_id}" + (" (not uploaded)" if not result.uploaded else ""))
    table.add_column("path in repo", overflow="fold")
    table.add_column("size", justify="right", no_wrap=True)
    for path, size in staged.files:
        table.add_row(path, human_size(size))
    console.print(table)
    total = sum(size for _, size in staged.files)
    configs = ", ".join(f"{c} ({n:,})" for c, n in staged.configs.items())
    console.print(f"{len(staged.files)} files, {human_size(total)}; configs: {configs}", highlight=False)
    if result.uploaded:
        console.print(f"pushed {staged.build_dir} in one commit: {result.commit_url}", highlight=False)
    else:
        console.print(f"staged {staged.build_dir} in {staged.folder}; nothing was uploaded", highlight=False)


if __name__ == "__main__":  # pragma: no cover
    app()
