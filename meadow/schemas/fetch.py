"""Where a source's raw files come from: the ``fetch`` entries of a recipe source.

Each entry is one file, downloaded (or, for ``manual``, placed by hand) into
``<raw_dir>/<source>/<to>``, where ``raw_dir`` is ``data/raw`` by default, so that the
source's ``path`` glob then matches it. An archive can be unpacked there (``extract``).

```yaml
fetch:
  - {kind: url, url: https://example.org/data.tar, extract: true, members: ["data/dev/*"]}
  - {kind: hf, repo_id: OpenAssistant/oasst1, file: 2023-04-12_oasst_ready.trees.jsonl.gz}
  - {kind: kaggle, dataset: allen-institute-for-ai/CORD-19-research-challenge, file: metadata.csv}
  - {kind: osf, project: fyg46, file: question_driven_answer_summarization_primary_dataset.json}
  - {kind: manual, file: iCliniq.json, url: https://drive.google.com/..., instructions: "..."}
```

``sha256`` and ``size`` pin a file; where they are left out, the first download records
them in ``sources.lock`` (trust on first use) and every later fetch verifies against it.
These models live apart from meadow.hub.fetch so that meadow.schemas.recipe can import them without
importing the download code.
"""

from __future__ import annotations

import posixpath
from typing import TYPE_CHECKING, Annotated, Any, Literal
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

SHA256 = r"^[0-9a-f]{64}$"


def _relative(value: str) -> str:
    """A plain relative POSIX path that stays inside the source's folder."""
    path = value.replace("\\", "/")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if not parts or path.startswith("/") or ".." in parts or ":" in parts[0]:
        raise ValueError(
            f"{value!r} must be a relative path inside the source's folder (no '..', not absolute)"
        )
    return "/".join(parts)


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    to: str | None = Field(
        None, description="where the file goes, relative to <raw_dir>/<source>/ (default: its upstream name)"
    )
    sha256: str | None = Field(None, pattern=SHA256, description="expected sha256 (lowercase hex)")
    size: int | None = Field(None, ge=0, description="expected size in bytes")
    extract: bool = Field(False, description="unpack the file (tar, tar.gz/bz2/xz or zip) after download")
    extract_to: str = Field("", description="folder to unpack into, relative to <raw_dir>/<source>/")
    members: list[str] = Field(
        default_factory=list, description="only unpack archive members matching these globs (fnmatch)"
    )
    license: str = Field("", description="the file's license where it differs from the loader's")
    note: str = Field("", description="shown in the source's SOURCE.md")

    @field_validator("to")
    @classmethod
    def _to(cls, value: str | None) -> str | None:
        return None if value is None else _relative(value)

    @field_validator("extract_to")
    @classmethod
    def _extract_to(cls, value: str) -> str:
        return _relative(value) if value.strip("./") else ""

    @model_validator(mode="after")
    def _members_need_extract(self) -> _Entry:
        if (self.members or self.extract_to) and not self.extract:
            raise ValueError("'members' and 'extract_to' need 'extract: true'")
        return self

    def default_name(self) -> str:
        raise NotImplementedError

    def destination(self) -> str:
        """The file's path relative to the source's folder."""
        return self.to or self.default_name()

    def origin(self) -> str:
        """What identifies the upstream file; a lock entry with another origin is stale."""
        raise NotImplementedError

    def page(self) -> str:
        """A URL a person can open to see where the file comes from."""
        raise NotImplementedError


class UrlFetch(_Entry):
    """A plain HTTP(S) download (GitHub raw/releases, archive.org, a project's server)."""

    kind: Literal["url"]
    url: str = Field(description="http(s) URL of the file")

    @field_validator("url")
    @classmethod
    def _http(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"{value!r} is not an http(s) URL")
        return value

    def default_name(self) -> str:
        name = posixpath.basename(unquote(urlsplit(self.url).path))
        if not name:
            raise ValueError(f"cannot tell a file name from {self.url!r}: give 'to'")
        return _relative(name)

    @model_validator(mode="after")
    def _named(self) -> UrlFetch:
        self.destination()
        return self

    def origin(self) -> str:
        return self.url

    def page(self) -> str:
        return self.url


class _NamedFile(_Entry):
    """An entry whose upstream file is named by ``file`` (a relative path, checked)."""

    file: str

    @field_validator("file")
    @classmethod
    def _file(cls, value: str) -> str:
        return _relative(value)

    def default_name(self) -> str:
        return posixpath.basename(self.file)


class HfFetch(_NamedFile):
    """A file of a Hugging Face Hub repository, at a pinned revision."""

    kind: Literal["hf"]
    repo_id: str = Field(pattern=r"^[\w.-]+/[\w.-]+$", description="ORG/NAME")
    repo_type: Literal["dataset", "model", "space"] = "dataset"
    revision: str = Field(
        "main",
        description="a commit sha (pinned), or a branch/tag; the commit it resolves to goes in the lock",
    )
    file: str = Field(description="the file's path in the repository")

    def default_name(self) -> str:
        return self.file

    def origin(self) -> str:
        return f"hf://{self.repo_type}s/{self.repo_id}/{self.file}"

    def page(self) -> str:
        prefix = "" if self.repo_type == "model" else f"{self.repo_type}s/"
        return f"https://huggingface.co/{prefix}{self.repo_id}"


class KaggleFetch(_NamedFile):
    """A file of a Kaggle dataset, through the ``kaggle`` package (needs Kaggle credentials)."""

    kind: Literal["kaggle"]
    dataset: str = Field(
        pattern=r"^[\w.-]+/[\w.-]+(/versions/\d+)?$", description="OWNER/SLUG or OWNER/SLUG/versions/N"
    )
    file: str = Field(description="the file's name in the dataset")

    def origin(self) -> str:
        return f"kaggle://{self.dataset}/{self.file}"

    def page(self) -> str:
        owner_slug = "/".join(self.dataset.split("/")[:2])
        return f"https://www.kaggle.com/datasets/{owner_slug}"


class OsfFetch(_NamedFile):
    """A file in the storage of an OSF project (osf.io), found by name through the OSF API."""

    kind: Literal["osf"]
    project: str = Field(
        pattern=r"^[a-z0-9]{5}$", description="the project's id, e.g. fyg46 for osf.io/fyg46"
    )
    file: str = Field(description="the file's name, or its path in the project's storage")

    def origin(self) -> str:
        return f"osf://{self.project}/{self.file}"

    def page(self) -> str:
        return f"https://osf.io/{self.project}/"


def is_glob(path: str) -> bool:
    """Whether a manual entry's ``file`` is a glob (several files placed by hand, e.g. Anki decks)."""
    return any(c in path for c in "*?[")


class ManualFetch(_NamedFile):
    """A file that cannot be downloaded automatically (Google Drive, AnkiWeb, a web export):
    fetch tells where to get it and where to put it, then verifies and records it."""

    kind: Literal["manual"]
    file: str = Field(
        description="where to put the file, relative to <raw_dir>/<source>/ (a glob is allowed)"
    )
    url: str = Field(description="the page to get it from")
    instructions: str = Field("", description="what to do, in a sentence or two")

    @model_validator(mode="after")
    def _no_to(self) -> ManualFetch:
        if self.to is not None:
            raise ValueError("a manual entry names its destination with 'file'; 'to' is not used")
        if self.extract and is_glob(self.file):
            raise ValueError("'extract' needs one file, not a glob")
        return self

    def default_name(self) -> str:
        return self.file

    def origin(self) -> str:
        return f"manual:{self.url}"

    def page(self) -> str:
        return self.url


FetchEntry = Annotated[
    UrlFetch | HfFetch | KaggleFetch | OsfFetch | ManualFetch,
    Field(discriminator="kind"),
]


class FetchedFiles(BaseModel):
    """What a recipe's sources and benchmarks share: ``path`` (file paths or globs) and ``fetch``
    (one entry or a list). Each model declares the two fields itself, in its own key order (pydantic
    would put fields declared here first, and the manifest echoes the recipe in field order)."""

    if TYPE_CHECKING:
        path: str | list[str]
        fetch: list[FetchEntry]

    @field_validator(
        "fetch", mode="before", check_fields=False, json_schema_input_type=FetchEntry | list[FetchEntry]
    )
    @classmethod
    def _one_or_more(cls, value: Any) -> Any:
        return [value] if isinstance(value, dict) else value

    def patterns(self) -> list[str]:
        return [self.path] if isinstance(self.path, str) else list(self.path)
