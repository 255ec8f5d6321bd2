"""User-facing errors: each names the file and the line or record at fault."""

from __future__ import annotations

from pathlib import Path


class MeadowError(Exception):
    """An error the CLI prints as one clear message, without a traceback."""


class InputError(MeadowError):
    """Bad input: a file (and where known, a line or record) and what was expected."""

    def __init__(self, path: str | Path, message: str, *, line: int | None = None, record: str | None = None):
        self.path = str(path)
        self.line = line
        self.record = record
        self.message = message
        super().__init__(str(self))

    @property
    def where(self) -> str:
        where = self.path
        if self.line is not None:
            where += f":{self.line}"
        if self.record is not None:
            where += f" (record {self.record})"
        return where

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


class MissingInputError(MeadowError):
    """No file matches a path pattern of a source or benchmark. ``what`` names it (``source 'x'``),
    ``base`` is the folder the pattern is relative to, ``hint`` says what to do (the same for every
    missing input, so `meadow check` says it once)."""

    def __init__(self, what: str, pattern: str, base: Path, hint: str):
        self.what, self.pattern, self.base, self.hint = what, pattern, base, hint
        super().__init__(f"{self.short} (relative to {base}); {hint}")

    @property
    def short(self) -> str:
        return f"{self.what}: no file matches {self.pattern!r}"
