"""The one protocol of the per-record quality steps: keep a record, or drop it with a reason.

Each quality filter (meadow.quality.filters) and the benchmark check (meadow.quality.decontaminate)
is a small callable object: ``step(record)`` is None to keep the record, or a ``Rejection`` that says
why not. The build runs a source's steps in order and counts the first rejection in one place
(meadow.build.screen), as datatrove's ``BaseFilter`` does for its filters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from meadow.records import Record


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a step turned a record down: the drop reason counted in the manifest and a detail."""

    reason: str
    detail: str = ""
    benchmark: str | None = None
    """For a contaminated record: the benchmark it was found in."""
    report: dict[str, Any] | None = None
    """For a contaminated record: its contamination.jsonl line, less the source name."""


class Step(Protocol):
    """One per-record quality step."""

    def __call__(self, record: Record) -> Rejection | None: ...
