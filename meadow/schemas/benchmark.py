"""A recipe's ``benchmarks:`` entries: evaluation sets that are fetched and decontaminated against."""

from __future__ import annotations

from typing import Any

from pydantic import (
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)

from meadow import benchmarks
from meadow.schemas.fetch import FetchedFiles, FetchEntry


class BenchmarkEntry(FetchedFiles):
    """One evaluation set of a recipe's ``benchmarks:``: its questions are never trained on.

    Keys other than ``kind``, ``path`` and ``fetch`` are the kind's options (mmlu: ``subjects``),
    checked by the kind's options model (meadow/benchmarks/<kind>.py): an unknown key is an error.
    """

    model_config = ConfigDict(extra="allow")

    kind: str = Field(description="the published format: a module of meadow/benchmarks/")
    path: str | list[str] = Field(description="file path(s) or glob(s), relative to the working directory")
    fetch: list[FetchEntry] = Field(
        default_factory=list, description="where `meadow fetch` gets the files (see meadow/schemas/fetch.py)"
    )

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, value: str) -> str:
        known = benchmarks.kinds()
        if value not in known:
            raise ValueError(f"unknown benchmark kind {value!r}; known kinds: {', '.join(known)}")
        return value

    @model_validator(mode="after")
    def _kind_options(self) -> BenchmarkEntry:
        options = benchmarks.get(self.kind).options
        given = {}
        for key, value in (self.model_extra or {}).items():
            elsewhere = [k.name for k in benchmarks.registry().values() if key in k.options.model_fields]
            if key in options.model_fields or not elsewhere:
                given[key] = value  # an unknown key fails below, named
            elif value is not None:  # null is "not set" (a manifest echoes `subjects: null` on any kind)
                raise ValueError(
                    f"{key!r} applies to kind{'s' if len(elsewhere) > 1 else ''} {', '.join(elsewhere)} only"
                )
        # kept with the defaults filled in, as the manifest shows the recipe
        self.__pydantic_extra__ = options.model_validate(given).model_dump()
        return self

    @model_serializer(mode="wrap")
    def _options_before_fetch(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data = handler(self)
        if "fetch" in data:  # the recipe's order: kind, path, the kind's options, fetch
            data["fetch"] = data.pop("fetch")
        return data

    def parsed_options(self) -> benchmarks.Options:
        return benchmarks.get(self.kind).options.model_validate(self.model_extra or {})

    def license(self) -> str:
        return benchmarks.get(self.kind).license

    def citation(self) -> str:
        return benchmarks.get(self.kind).citation
