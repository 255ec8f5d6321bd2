"""One loader per upstream source, registered by name.

A loader is a generator function ``load(paths, options)`` that reads a source's
original published files lazily and yields, one by one:

- ``Record``: a ready instruction example,
- ``Passage``: text that the LLM rephrasing step must turn into a Q/A pair,
- ``Drop``: an upstream unit that was not kept, with the reason (counted in the manifest).

Loaders never print and never skip anything silently: every unit read becomes exactly
one of those (a unit may also yield several records, e.g. one per answer).
Bad input that makes the rest of a file unreadable raises ``InputError``.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from meadow.records import Passage, Record


@dataclass(frozen=True, slots=True)
class Drop:
    """An upstream unit that was not kept.

    ``reason`` is a short snake_case key counted in the manifest ('no_abstract',
    'score_below_min'); ``where`` names the file and line or record; ``malformed``
    marks bad input (as opposed to a deliberate filter): a recipe with
    ``on_error: fail`` stops the build on it.
    """

    reason: str
    where: str
    detail: str = ""
    malformed: bool = False


Item = Record | Passage | Drop


class Options(BaseModel):
    """Base class of a loader's options; unknown keys are errors. An option's docstring (or
    ``Field(description=...)``) is its description in `meadow sources LOADER`."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    def yields_passages(self, patterns: Sequence[str]) -> bool:
        """Whether a loader registered as 'records or passages' yields Passages for these
        options and input paths; lets the build refuse such a source before reading anything.
        """
        return False


Loader = Callable[[Sequence[Path], Options], Iterator[Item]]

Position = tuple[int, int]
"""(file index in ``paths``, line): where a row starts."""
Span = tuple[Position, Position]
"""The rows starting from the first position up to, not including, the second."""


@dataclass(frozen=True)
class SourceSpec:
    name: str
    load: Loader
    options: type[Options]
    produces: Literal["records", "passages", "records or passages"]
    summary: str
    license: str
    citation: str
    test_only: bool = False
    per_file: bool = False
    """``load(paths)`` yields what ``load([p])`` for each path in turn yields: no state spans
    files, so `meadow build --workers` may read each file in its own shard (meadow.build.shards)."""
    tags: bool = False
    """Its records carry ``meta["tags"]`` (upstream tags), so the tag filters apply to it."""
    splittable: bool = False
    """``load(paths, options, span=(a, b))`` yields the items of the rows starting at positions
    ``a`` up to ``b`` (meadow.sources.Span), in order, with the state the rows before ``a`` leave
    (it reads them without yielding them): what ``load(paths, options)`` yields for those rows.
    So `meadow build --workers` may read one large file in several shards, each doing the work
    after loading (validation, filters, decontamination) for its own rows only."""


_REGISTRY: dict[str, SourceSpec] = {}


def register(
    name: str,
    *,
    options: type[Options] = Options,
    produces: Literal["records", "passages", "records or passages"] = "records",
    summary: str,
    license: str,
    citation: str = "",
    test_only: bool = False,
    per_file: bool = False,
    tags: bool = False,
    splittable: bool = False,
) -> Callable[[Loader], Loader]:
    """Register ``load`` under ``name``.

    ``test_only`` marks evaluation sets (USMLE self-assessment): a recipe may not train on them.
    ``per_file``: the loader keeps no state across files (see ``SourceSpec.per_file``).
    ``tags``: its records carry upstream tags in ``meta["tags"]`` (see ``SourceSpec.tags``).
    ``splittable``: it reads a span of its rows on request (see ``SourceSpec.splittable``).
    """

    def deco(load: Loader) -> Loader:
        if name in _REGISTRY:
            raise RuntimeError(f"two loaders registered as {name!r}")
        _REGISTRY[name] = SourceSpec(
            name, load, options, produces, summary, license, citation, test_only, per_file, tags, splittable
        )
        return load

    return deco


def _import_all() -> None:
    """Import every loader module of this package (each registers itself): adding a source is
    adding its file, with no list to edit. Modules whose names start with ``_`` are helpers."""
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")


def registry() -> dict[str, SourceSpec]:
    """All loaders by name."""
    # Importing is idempotent; checking for an empty registry instead would miss the loaders
    # of modules not yet imported when another module (e.g. meadow.eval) imported a few first.
    _import_all()
    return dict(sorted(_REGISTRY.items()))


def get(name: str) -> SourceSpec:
    specs = registry()
    if name not in specs:
        raise KeyError(f"unknown loader {name!r}; known: {', '.join(specs)}")
    return specs[name]
