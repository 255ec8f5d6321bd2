"""Benchmark kinds: one module per published format of an evaluation set, registered by name.

A kind's ``load(files, options)`` reads the files of one benchmark (already expanded from a path or
glob) and returns its multiple-choice ``Question``s in file order, with the questions it removed
counted by reason (``Loaded``): the questions it left out of scoring (``Unscored``: an image
question, one published without options or with an answer key that names no option) keep their
text, which decontamination indexes all the same (a question that cannot be scored can still
leak into training data). Its options (MMLU's ``subjects``) are a pydantic model, checked
where a recipe or a spec names the kind. ``meadow eval`` and the build's decontamination read
benchmarks through this registry alike, so adding a kind is adding its module: every module here
registers itself and is imported on first use, with no list to edit.

Unlike a training build, a benchmark never skips a malformed question silently. A kind either
raises InputError naming the file and the line (or record), or (usmle, pubmedqa, whose published
files hold such items) hands it back as ``Unscored`` with ``malformed=True``: ``read`` then logs a
warning naming the file and item and counts it, or, with ``strict``, raises the error.
"""

from __future__ import annotations

import glob
import importlib
import logging
import pkgutil
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from meadow.errors import InputError, MeadowError

log = logging.getLogger(__name__)


class Question(BaseModel):
    """One multiple-choice question."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1)
    benchmark: str = Field(min_length=1)
    """The table column it counts in: ``mmlu``, ``medqa_4opt``, ``usmle_step1``..."""
    question: str = Field(min_length=1)
    options: dict[str, str] = Field(min_length=2)
    """Letter -> option text, in the published order."""
    answer: str
    meta: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _answer_is_an_option(self) -> Question:
        if self.answer not in self.options:
            raise ValueError(f"answer {self.answer!r} is not one of the options {sorted(self.options)}")
        return self


@dataclass(frozen=True)
class Unscored:
    """A question of the benchmark left out of scoring, and why (``reason``, ``detail``, at ``at``:
    the file and record). Its text is still the benchmark's for decontamination. ``malformed``: the
    published item is broken (``--strict`` stops on it), as opposed to left out by rule (images)."""

    id: str
    benchmark: str
    reason: str
    at: str
    detail: str
    question: str = ""
    options: tuple[str, ...] = ()
    malformed: bool = False


@dataclass
class Loaded:
    """The questions of one benchmark, and how many were removed (by ``benchmark:reason``)."""

    questions: list[Question] = field(default_factory=list)
    removed: Counter[str] = field(default_factory=Counter)
    files: list[Path] = field(default_factory=list)
    unscored: list[Unscored] = field(default_factory=list)
    """The removed questions that are still the benchmark's (not those outside it, such as PubMedQA
    questions outside the test set)."""

    def unscore(self, item: Unscored) -> None:
        """Leave ``item`` out of scoring, counted under its reason."""
        self.unscored.append(item)
        self.removed[f"{item.benchmark}:{item.reason}"] += 1

    def texts(self) -> list[tuple[str, str, list[str]]]:
        """(id, question, options' texts) of every question, scored or not, that has a text: what
        decontamination indexes."""
        scored = [(q.id, q.question, list(q.options.values())) for q in self.questions]
        return scored + [(u.id, u.question, list(u.options)) for u in self.unscored if u.question.strip()]


class Options(BaseModel):
    """Base class of a kind's options; unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")


Load = Callable[[list[Path], Any], Loaded]
"""``load(files, options)``: the questions of ``files``; ``options`` is the kind's ``Options`` model."""


@dataclass(frozen=True)
class BenchmarkKind:
    name: str
    load: Load
    options: type[Options]
    summary: str
    license: str
    citation: str


_REGISTRY: dict[str, BenchmarkKind] = {}


def register(
    name: str, *, options: type[Options] = Options, summary: str, license: str, citation: str
) -> Callable[[Load], Load]:
    """Register ``load`` as the reader of benchmark kind ``name``."""

    def deco(load: Load) -> Load:
        if name in _REGISTRY:
            raise RuntimeError(f"two benchmark kinds registered as {name!r}")
        _REGISTRY[name] = BenchmarkKind(name, load, options, summary, license, citation)
        return load

    return deco


def _import_all() -> None:
    """Import every kind module of this package (each registers itself). Modules whose names start
    with ``_`` are helpers."""
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")


def registry() -> dict[str, BenchmarkKind]:
    """All kinds by name."""
    _import_all()  # idempotent, as in meadow.sources.registry
    return dict(sorted(_REGISTRY.items()))


def kinds() -> list[str]:
    """The names of the kinds, sorted."""
    return list(registry())


def get(kind: str) -> BenchmarkKind:
    specs = registry()
    if kind not in specs:
        raise KeyError(f"unknown benchmark kind {kind!r}; known kinds: {', '.join(specs)}")
    return specs[kind]


def make_question(at: str, **fields: Any) -> Question:
    """A ``Question``; InputError at ``at`` (file and line or record) naming the bad field."""
    try:
        return Question(**fields)
    except ValueError as err:  # pydantic ValidationError is a ValueError
        errors = getattr(err, "errors", None)
        detail = (
            "; ".join(f"{'.'.join(map(str, e['loc'])) or 'question'}: {e['msg']}" for e in errors())
            if errors
            else str(err)
        )
        raise InputError(at, detail) from None


# --------------------------------------------------------------------------- specs (meadow eval)


def parse_spec(spec: str) -> tuple[str, str]:
    """``"mmlu:data/raw/mmlu_test/data/test/*.csv"`` -> ``("mmlu", glob)``."""
    kind, sep, pattern = spec.partition(":")
    known = kinds()
    if not sep or kind not in known or not pattern:
        raise MeadowError(
            f"benchmark {spec!r}: expected KIND:PATH_OR_GLOB with KIND one of {', '.join(known)} "
            "(e.g. mmlu:data/raw/mmlu_test/data/test/*.csv)"
        )
    return kind, pattern


def expand(pattern: str) -> list[Path]:
    """The files a path, folder or glob names, sorted; MeadowError if none."""
    path = Path(pattern).expanduser()
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file())
    else:
        files = sorted(Path(p) for p in glob.glob(str(path), recursive=True) if Path(p).is_file())
    if not files:
        raise MeadowError(f"{pattern}: no such file (nor any file matching it)")
    return files


def read(kind: str, files: list[Path], options: Any, *, label: str, strict: bool = False) -> Loaded:
    """The questions of ``files`` read by ``kind`` with its ``options`` (a dict, checked by the
    kind's options model, or that model). ``label`` names the benchmark in errors. A malformed item
    the kind left unscored is a warning naming it, or with ``strict`` an InputError."""
    reader = get(kind)
    try:
        parsed = reader.options.model_validate(options)
    except ValidationError as err:
        detail = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())
        raise MeadowError(f"benchmark {label}: {kind} options: {detail}") from None
    try:
        loaded = reader.load(files, parsed)
    except InputError:
        raise  # it names the file and record
    except MeadowError as err:
        raise MeadowError(f"benchmark {label}: {err}") from None
    loaded.files = files
    for item in loaded.unscored:
        if not item.malformed:
            log.debug("%s: %s (%s): not scored", item.at, item.detail, item.reason)
        elif strict:
            raise InputError(item.at, f"{item.detail} ({item.reason})")
        else:
            log.warning("%s: %s: not scored (%s; --strict stops here)", item.at, item.detail, item.reason)
    if not loaded.questions:
        raise MeadowError(f"benchmark {label}: no {kind} questions in {len(files)} file(s)")
    seen: set[str] = set()
    for q in loaded.questions:
        if q.id in seen:
            raise MeadowError(f"benchmark {label}: question id {q.id} appears twice (same file read twice?)")
        seen.add(q.id)
    return loaded


def load_benchmark(spec: str, *, strict: bool = False, **options: Any) -> Loaded:
    """Load every question of a ``KIND:PATH_OR_GLOB`` spec; ``options`` are the kind's (mmlu:
    ``subjects``); ``strict``: a malformed question is an error instead of a counted removal."""
    kind, pattern = parse_spec(spec)
    return read(kind, expand(pattern), options, label=repr(spec), strict=strict)
