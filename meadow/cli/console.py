"""Where the commands print.

Results (tables, summaries, the files written, ``--json``) go to stdout, so that
``meadow check r.yaml > files.txt`` captures them; piped or redirected, lines are never wrapped.
Diagnostics (the log, warnings, errors, prompts) go to stderr: ``console``.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NoReturn

import typer
from rich.console import Console, RenderableType
from rich.logging import RichHandler

from meadow.errors import MeadowError

# Diagnostics. In a log file or a pipe, messages are not wrapped at rich's 80 columns.
console = Console(stderr=True, soft_wrap=not sys.stderr.isatty())

_UNWRAPPED = 1_000_000  # the width of a console that is not a terminal: tables at their natural width


def out() -> Console:
    """The console of results: stdout as it is now (a terminal, or a pipe or file: unwrapped)."""
    if sys.stdout.isatty():
        return Console()
    return Console(width=_UNWRAPPED)


QUIET_LOGGERS = ("httpx", "httpcore", "httpx2", "httpcore2", "openai")
"""Loggers kept to warnings unless --verbose: the HTTP clients log a line per request. openai 3
sends its requests through httpx2, which logs as ``httpx2`` (a cold v1 build printed 44,556 lines)."""


def setup_logging(verbose: bool) -> None:
    """Log to stderr: through rich on a terminal, plain lines (one per message) otherwise."""
    if sys.stderr.isatty():
        handler: logging.Handler = RichHandler(console=console, show_path=False, show_time=False)
        handler.setFormatter(logging.Formatter("%(message)s"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)-8s %(message)s"))
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, handlers=[handler])
    if not verbose:  # one INFO line per HTTP request (the openai client's httpx): noise, and ~1 ms each
        for name in QUIET_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)


def fail(err: MeadowError) -> NoReturn:
    """Print ``err`` as one message (no traceback) on stderr and exit with status 1."""
    console.print(f"[bold red]error:[/] {err}", highlight=False, soft_wrap=True)
    raise typer.Exit(1)


def interrupted(what: str) -> NoReturn:
    """After Ctrl-C: say on stderr what state things are in, and exit 130 (as a shell does)."""
    console.print(f"[bold yellow]interrupted:[/] {what}", highlight=False, soft_wrap=True)
    raise typer.Exit(130)


def show(items: Iterable[RenderableType], on: Console | None = None) -> None:
    """Print what a render function returned (tables, and lines with rich markup) as results."""
    on = on or out()
    for item in items:
        if isinstance(item, str):
            on.print(item, highlight=False)
        else:
            on.print(item)


def emit_json(data: Any) -> None:
    """Print ``data`` as JSON on stdout (``--json``); paths and other objects as strings."""
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def shown(path: Path) -> str:
    """``path`` relative to the working directory where it is inside it, else as given."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
