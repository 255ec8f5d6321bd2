"""`meadow stats`: the HTML report on a build; `meadow diff`: what changed between two builds."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from meadow.cli import render
from meadow.cli.console import emit_json, fail, out, show
from meadow.errors import MeadowError


def stats(
    build_dir: Annotated[Path, typer.Argument(help="A build folder, e.g. data/processed/demo.")],
    tokenizer: Annotated[
        str,
        typer.Option(
            "--tokenizer",
            "-t",
            help="Count lengths with this tokenizer: smollm2 (the embedded model), a model or tokenizer "
            "folder, a GGUF file, a cached Hub id, or 'whitespace' (words; fast, no model).",
        ),
    ] = "smollm2",
    max_records: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option(
            "--max-records",
            min=1,
            help="Measure lengths on about this many records (every k-th of each source).",
        ),
    ] = None,
    samples: Annotated[int, typer.Option("--samples", min=0, help="Kept records shown per source.")] = 3,
    contamination_rows: Annotated[
        int, typer.Option("--contamination-rows", min=0, help="Lines of contamination.jsonl shown.")
    ] = 50,
    output: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option("--output", "-o", help="Write the report here instead of BUILD_DIR/report."),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Write an HTML report on a build: BUILD_DIR/report/index.html, plus its charts as PNGs.

    Records per source through each step (drops, filters, decontamination, exact and near
    duplicates, subsample), drop reasons, contamination hits, token lengths per field and
    source, and sample kept and dropped records.

    One self-contained file: charts embedded, no script, no external resource.
    """
    from meadow.stats.report import write_report

    try:
        report = write_report(
            build_dir,
            output=output,
            tokenizer=tokenizer,
            max_records=max_records,
            samples=samples,
            contamination_rows=contamination_rows,
            progress=not quiet,
        )
    except MeadowError as err:
        fail(err)
    out().print(f"wrote {report.path} ({len(report.images)} charts)", highlight=False)


def diff(
    build_a: Annotated[Path, typer.Argument(help="The earlier build folder.")],
    build_b: Annotated[Path, typer.Argument(help="The later build folder.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the differences as JSON.")] = False,
) -> None:
    """What changed from BUILD_A to BUILD_B, per source.

    Records are matched by their stable id: added (only in B), removed (only in A) or changed
    (another instruction, input or output), whatever the row order. Also per source: drop
    reasons whose counts moved, and whether the input files (sha256) or the loader differ;
    for the build, whether the recipe differs. Both builds are checked against their
    manifests first.
    """
    from meadow.stats.diff import diff_builds

    try:
        result = diff_builds(build_a, build_b)
    except MeadowError as err:
        fail(err)
    if as_json:
        emit_json(result.to_json())
        return
    show(render.diff_summary(result))
