"""Where the commands print: the console of messages (stderr) and the one way to fail."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path
from typing import NoReturn

import typer
from rich.console import Console, RenderableType

from meadow.errors import MeadowError

# Wide enough for the summary table when stderr is a log file or a pipe (rich assumes 80).
console = Console(stderr=True, width=None if sys.stderr.isatty() else 120)


def fail(err: MeadowError) -> NoReturn:
    """Print ``err`` as one message (no traceback) and exit with status 1."""
    console.print(f"[bold red]error:[/] {err}", highlight=False, soft_wrap=True)
    raise typer.Exit(1)


def show(items: Iterable[RenderableType], on: Console = console) -> None:
    """Print what a render function returned: tables, and lines with rich markup."""
    for item in items:
        if isinstance(item, str):
            on.print(item, highlight=False)
        else:
            on.print(item)


def shown(path: Path) -> str:
    """``path`` relative to the working directory where it is inside it, else as given."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
