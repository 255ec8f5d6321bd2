"""`meadow stats`: the HTML report on a build."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from meadow.cli.console import fail, out
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
