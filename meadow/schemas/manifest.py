"""``manifest.json``: what a build read, dropped, kept and wrote, typed once for every reader.

`meadow build` writes it (meadow.build.manifest); `meadow stats`, `meadow push`, `meadow train`
(data provenance) and the CLI's summary read it through ``Manifest.read``. Every field has a
default, so the manifests of older builds, which lack the newer sections, still read; optional
sections are left out of the JSON when a build did not run their step, as before.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_serializer

from meadow.errors import MeadowError


class _Section(BaseModel):
    """A manifest object: unknown keys (from a newer meadow) are kept; the fields named in
    ``OMIT_NONE`` are left out of the JSON when None (a step the build did not run)."""

    model_config = ConfigDict(extra="allow")
    OMIT_NONE: ClassVar[frozenset[str]] = frozenset()

    @model_serializer(mode="wrap")
    def _omit(self, handler: Any) -> dict[str, Any]:
        data = handler(self)
        return {k: v for k, v in data.items() if v is not None or k not in self.OMIT_NONE}

    def to_json(self) -> dict[str, Any]:
        """The object as JSON data (what the manifest file holds)."""
        return self.model_dump(mode="json")


class InputFile(_Section):
    """One input file: its path as the recipe gives it, its size and sha256."""

    path: str
    bytes: int
    sha256: str


class OutputFile(_Section):
    """One file of the build folder: size, sha256 and, for data files, the number of records."""

    OMIT_NONE = frozenset({"records"})

    bytes: int
    sha256: str
    records: int | None = None


class SourceReport(_Section):
    """What became of one source's rows."""

    OMIT_NONE = frozenset(
        {
            "near_duplicates",
            "near_duplicate_of",
            "near_dedup_short",
            "contaminated",
            "llm",
            "steps",
            "peak_rss_mib",
        }
    )

    loader: str = ""
    inputs: list[InputFile] = Field(default_factory=list)
    read: int = 0
    dropped: dict[str, int] = Field(default_factory=dict)
    """Drop reason -> rows (loader drops, invalid records, filters, contamination)."""
    dropped_total: int = 0
    drop_examples: dict[str, list[str]] = Field(default_factory=dict)
    duplicates: int = 0
    duplicate_of: dict[str, int] = Field(default_factory=dict)
    """Source whose kept record this source's exact duplicates repeat -> count."""
    near_duplicates: int | None = None
    """None: the build does no near dedup."""
    near_duplicate_of: dict[str, int] | None = None
    near_dedup_short: int | None = None
    """Records short of ``n`` because the oversampled near-dedup candidates ran out (None: none)."""
    unique: int = 0
    n: int | str = "all"
    sampled: int = 0
    """Records kept in the build."""
    contaminated: dict[str, int] | None = None
    """Benchmark -> records found in it (None: the build does not decontaminate)."""
    llm: dict[str, Any] | None = None
    """Rephrasing accounting, for sources that yield passages."""
    seconds: float = 0.0
    steps: dict[str, float] | None = None
    """Seconds per step (load, filter, decontaminate, sample, rephrase, near_dedup), summed over
    the processes that ran it (a sharded build reads in its workers)."""
    peak_rss_mib: float | None = None
    """The build process's peak resident memory so far, when this source was done."""


class Totals(_Section):
    OMIT_NONE = frozenset({"near_duplicates"})

    read: int = 0
    dropped: int = 0
    duplicates: int = 0
    near_duplicates: int | None = None
    unique: int = 0
    records: int = 0


class Manifest(_Section):
    """The whole ``manifest.json`` of a build."""

    OMIT_NONE = frozenset({"near_dedup", "llm", "executor", "decontamination", "steps", "peak_rss_mib"})

    meadow_version: str = ""
    recipe_path: str = ""
    recipe_sha256: str = ""
    recipe: dict[str, Any] = Field(default_factory=dict)
    """The validated recipe, as JSON."""
    sources: dict[str, SourceReport] = Field(default_factory=dict)
    totals: Totals = Field(default_factory=Totals)
    versions: dict[str, str] = Field(default_factory=dict)
    platform: str = ""
    near_dedup: dict[str, Any] | None = None
    """The near-dedup settings, LSH shape and time (None: not run)."""
    llm: dict[str, Any] | None = None
    """The rephrasing backend and settings (None: nothing was rephrased)."""
    executor: dict[str, Any] | None = None
    """Where the shards were read (None: in the build's own process)."""
    decontamination: dict[str, Any] | None = None
    """Matching settings and per-benchmark findings (None: not run)."""
    outputs: dict[str, OutputFile] = Field(default_factory=dict)
    steps: dict[str, float] | None = None
    """Seconds per step over all sources, and ``write``: where the build's time went."""
    peak_rss_mib: float | None = None
    """The build process's peak resident memory (a sharded build's workers: ``executor``)."""
    seconds: float = 0.0

    @classmethod
    def read(cls, path: str | Path) -> Manifest:
        """Read and validate a manifest file; errors name the file."""
        path = Path(path)
        try:
            return cls.model_validate_json(path.read_bytes())
        except FileNotFoundError:
            raise MeadowError(f"{path}: no manifest (not a meadow build folder?)") from None
        except OSError as err:
            raise MeadowError(f"{path}: cannot read the manifest: {err}") from None
        except ValidationError as err:
            first = err.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise MeadowError(f"{path}: not a meadow manifest ({where}: {first['msg']})") from None
