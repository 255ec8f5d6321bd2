"""The `meadow` command line: a table of command -> plain function (as litgpt's ``__main__.py``).

Each command is a plain function in the module of its group, declaring its options and calling
the library: build.py (build, sources, check, recipe-schema, convert), hub.py (fetch, push), train.py,
eval.py (eval, generate), stats.py (stats, diff). What they print is rendered by render.py, from data.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Optional

import typer

from meadow import __version__
from meadow.cli import build, hub, stats, train
from meadow.cli import eval as evaluation
from meadow.cli.command import Command
from meadow.cli.console import setup_logging

COMMANDS: dict[str, Callable[..., None]] = {
    "build": build.build,
    "sources": build.list_sources,
    "check": build.check,
    "recipe-schema": build.recipe_schema,
    "convert": build.convert,
    "fetch": hub.fetch,
    "push": hub.push,
    "train": train.train,
    "eval": evaluation.eval_,
    "generate": evaluation.generate,
    "stats": stats.stats,
    "diff": stats.diff,
}
"""Every subcommand, in the order `meadow --help` lists them."""

COMMAND_OPTIONS: dict[str, dict[str, Any]] = {"train": train.COMMAND_OPTIONS}
"""typer's ``app.command`` settings of the commands that need any."""

app = typer.Typer(
    name="meadow",
    help="Build Medical Meadow (the medAlpaca instruction data) from the raw upstream sources.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


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
    setup_logging(verbose)


for _name, _command in COMMANDS.items():
    app.command(_name, **{"cls": Command, **COMMAND_OPTIONS.get(_name, {})})(_command)
