"""Recipes: which sources go into a build, how many records of each, and the seed.

A recipe is YAML validated by the pydantic models below; an unknown key, a wrong type
or an unknown loader is an error that names the file, the key path and its line.
"""

from __future__ import annotations

import difflib
import glob
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_serializer,
    field_validator,
    model_validator,
)

from meadow import sources
from meadow.errors import MeadowError, MissingInputError
from meadow.schemas.benchmark import BenchmarkEntry
from meadow.schemas.explain import messages, schema_keys, yaml_error, yaml_line
from meadow.schemas.fetch import FetchedFiles, FetchEntry
from meadow.schemas.llm import LLMSettings
from meadow.schemas.quality import DecontaminateSettings, FilterSettings, NearDedup, merge


class SourceEntry(FetchedFiles):
    """One source of a build."""

    model_config = ConfigDict(extra="forbid")

    loader: str = Field(description="registered loader name, see `meadow sources`")
    path: str | list[str] = Field(description="file path(s) or glob(s), relative to the working directory")
    n: Annotated[int, Field(ge=1)] | Literal["all"] = Field(
        "all", description="records to keep after dedup (seeded, hash-ranked), or all"
    )
    options: dict[str, Any] = Field(default_factory=dict, description="the loader's options")
    on_error: Literal["skip", "fail"] | None = Field(
        None, description="malformed rows: count and skip, or fail the build (default: the recipe's)"
    )
    fetch: list[FetchEntry] = Field(
        default_factory=list,
        description="where `meadow fetch` gets the raw files (see meadow/schemas/fetch.py)",
    )
    allow_empty: bool = Field(
        False,
        description="build even when this source's loader gives no record (by default that stops the "
        "build: an empty or truncated download must not silently vanish from the data)",
    )
    filters: FilterSettings = Field(
        default_factory=FilterSettings,
        description="quality filters of this source: the keys set here replace the recipe's, key by key",
    )

    @field_serializer("filters")
    def _only_overrides(self, value: FilterSettings) -> dict[str, Any]:
        return value.model_dump(mode="json", include=value.model_fields_set)

    @model_validator(mode="after")
    def _tags_need_tagged_records(self) -> SourceEntry:
        specs = sources.registry()
        if self.filters.sets_tags() and self.loader in specs and not specs[self.loader].tags:
            tagged = sorted(name for name, spec in specs.items() if spec.tags)
            raise ValueError(
                f"filters include_tags/exclude_tags: loader {self.loader!r} gives no tags "
                f"(these do: {', '.join(tagged)})"
            )
        return self

    @field_validator("n", mode="before")
    @classmethod
    def _positive(cls, value: Any) -> Any:
        if value == "all" or (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
            return value
        if isinstance(value, str) and value.strip().isdigit() and int(value) >= 1:
            return int(value)
        raise ValueError(f"expected a positive number or 'all', got {value!r}")

    @field_validator("loader")
    @classmethod
    def _known_loader(cls, value: str) -> str:
        specs = sources.registry()
        if value not in specs:
            close = difflib.get_close_matches(value, [n for n, s in specs.items() if not s.test_only], n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            raise ValueError(f"unknown loader {value!r}{hint} (known loaders: {', '.join(specs)})")
        if specs[value].test_only:
            raise ValueError(
                f"{value!r} is a test-only evaluation set: it is used for evaluation and "
                "decontamination, never as training data"
            )
        return value

    def parsed_options(self) -> sources.Options:
        return sources.get(self.loader).options.model_validate(self.options)


class Recipe(BaseModel):
    """A build: sources with subsample counts, a seed, and where the output goes."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", description="build name: the output folder")
    description: str = ""
    seed: int = Field(42, description="seed of the hash ranking that picks the subsample")
    output_dir: str = Field("data/processed", description="the build goes to <output_dir>/<name>/")
    on_error: Literal["skip", "fail"] = Field(
        "skip", description="malformed rows: count and skip them (default) or fail the build"
    )
    dedup: Literal["exact", "none"] = Field(
        "exact", description="drop exact repeats of instruction+input+output across the build"
    )
    near_dedup: NearDedup | None = Field(
        None,
        description="drop near duplicates across the build (MinHash LSH); true for the defaults, absent: off",
    )
    sources: dict[str, SourceEntry] = Field(min_length=1)
    llm: LLMSettings = Field(
        default_factory=LLMSettings,
        description="the model that rephrases passages (flashcards, WikiDoc textbook) into Q/A pairs",
    )
    filters: FilterSettings = Field(
        default_factory=FilterSettings, description="quality filters of every source (see meadow/quality)"
    )
    benchmarks: dict[str, BenchmarkEntry] = Field(
        default_factory=dict, description="evaluation sets: fetched by `meadow fetch`, decontaminated against"
    )
    decontaminate: DecontaminateSettings = Field(
        default_factory=DecontaminateSettings, description="how records are matched to benchmark questions"
    )

    @field_validator("near_dedup", mode="before", json_schema_input_type=bool | NearDedup | None)
    @classmethod
    def _near_dedup_shorthand(cls, value: Any) -> Any:
        if isinstance(value, bool):
            return {} if value else None
        return value

    @field_validator("sources")
    @classmethod
    def _names(cls, value: dict[str, SourceEntry]) -> dict[str, SourceEntry]:
        for name in value:
            if not name or "/" in name or name.startswith("."):
                raise ValueError(f"source name {name!r} must be a plain name (no '/', not hidden)")
        return value

    @model_validator(mode="after")
    def _quality(self) -> Recipe:
        for name in self.benchmarks:
            if not name or "/" in name or name.startswith("."):
                raise ValueError(f"benchmark name {name!r} must be a plain name (no '/', not hidden)")
            if name in self.sources:
                raise ValueError(
                    f"{name!r} is both a source and a benchmark: each fetches into data/raw/<name>/, "
                    "give them different names"
                )
        unknown = [n for n in self.decontaminate.benchmarks or [] if n not in self.benchmarks]
        if unknown:
            raise ValueError(
                f"decontaminate.benchmarks: {', '.join(map(repr, unknown))} not in the recipe's benchmarks"
                + (f" ({', '.join(self.benchmarks)})" if self.benchmarks else " (there are none)")
            )
        for name, entry in self.sources.items():
            try:
                merge(self.filters, entry.filters)
            except ValidationError as err:
                msg = "; ".join(e["msg"].removeprefix("Value error, ") for e in err.errors())
                raise ValueError(f"sources.{name}.filters with the recipe's filters: {msg}") from None
        return self

    def source_filters(self, name: str) -> FilterSettings:
        """The filters of source ``name``: the recipe's, with the source's own keys replacing them."""
        return merge(self.filters, self.sources[name].filters)


SCHEMA_FILE = "recipe.schema.json"
"""The JSON Schema shipped beside the recipes (recipes/recipe.schema.json), for editors."""


def recipe_schema() -> dict[str, Any]:
    """The JSON Schema of a recipe (draft 2020-12), as `meadow recipe-schema` prints it: editors
    (the YAML language server) complete and check recipes with it. Loader options are free-form
    here; `meadow sources LOADER` lists them and `meadow check` validates them."""
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **Recipe.model_json_schema()}


SHIPPED = Path(__file__).resolve().parents[1] / "data"
"""The recipes and examples a wheel carries (links to the repository's recipes/ and examples/)."""


def shipped_recipes() -> dict[str, Path]:
    """The recipes shipped with meadow, by name (``demo``, ``demo_llm``, ``v1``)."""
    return {p.stem: p for p in sorted((SHIPPED / "recipes").glob("*.yaml"))}


def find_recipe(name_or_path: str | Path) -> Path:
    """``name_or_path`` itself when it is a file or looks like a path, else the shipped recipe of
    that name (``meadow build demo`` from any folder); an error lists the shipped names."""
    path = Path(name_or_path)
    if path.exists() or path.suffix in (".yaml", ".yml") or len(path.parts) > 1:
        return path
    shipped = shipped_recipes()
    if path.name in shipped:
        return shipped[path.name]
    raise MeadowError(
        f"{name_or_path}: no such recipe file, and no recipe of that name ships with meadow "
        f"(shipped: {', '.join(shipped) or 'none'})"
    )


def _shipped_inputs(recipe: Recipe, base: Path) -> Recipe:
    """A shipped recipe's relative input paths that match nothing under ``base`` (the working
    directory) but match the shipped examples, made absolute there: the demo recipes read
    examples/, which a wheel carries; v1 reads data/raw/ of the working directory, as written."""

    def moved(patterns: list[str]) -> str | list[str] | None:
        out = []
        for pattern in patterns:
            relative = not Path(pattern).is_absolute()
            if relative and not glob.glob(str(base / pattern)) and glob.glob(str(SHIPPED / pattern)):
                out.append(str(SHIPPED / pattern))
            else:
                out.append(pattern)
        return None if out == patterns else (out[0] if len(out) == 1 else out)

    update: dict[str, Any] = {}
    for field, entries in (("sources", recipe.sources), ("benchmarks", recipe.benchmarks)):
        changed = {name: moved(e.patterns()) for name, e in entries.items()}
        if any(v is not None for v in changed.values()):
            update[field] = {
                name: e if changed[name] is None else e.model_copy(update={"path": changed[name]})
                for name, e in entries.items()
            }
    return recipe.model_copy(update=update) if update else recipe


def load_recipe(path: str | Path) -> Recipe:
    """Read and validate a recipe file (or a shipped recipe by name: see ``find_recipe``); errors
    name the file, key and line."""
    path = find_recipe(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise MeadowError(f"{path}: recipe file not found") from None
    except (OSError, UnicodeDecodeError) as err:
        raise MeadowError(f"{path}: cannot read recipe: {err}") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise MeadowError(yaml_error(path, err)) from None
    if not isinstance(data, dict):
        raise MeadowError(f"{path}: a recipe must be a YAML mapping with at least 'name' and 'sources'")
    try:
        recipe = Recipe.model_validate(data)
    except ValidationError as err:
        # the loaders' options are reported with the rest, so one run shows every problem
        raise MeadowError(_format_errors(path, node, data, [*err.errors(), *_option_errors(data)])) from None
    # Each loader's options are checked now, so a typo fails before any reading.
    errors = _option_errors(data)
    if errors:
        raise MeadowError(_format_errors(path, node, data, errors))
    if path.parent.absolute() == (SHIPPED / "recipes").absolute():
        recipe = _shipped_inputs(recipe, Path.cwd())
    return recipe


def _option_errors(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The validation errors of each source's loader options (as given), keyed under the source."""
    specs = sources.registry()
    errors: list[dict[str, Any]] = []
    entries = data.get("sources")
    for name, entry in entries.items() if isinstance(entries, dict) else ():
        if not isinstance(entry, dict) or entry.get("loader") not in specs:
            continue
        options = entry.get("options") or {}
        if not isinstance(options, dict):
            continue
        try:
            specs[entry["loader"]].options.model_validate(options)
        except ValidationError as err:
            errors += [{**e, "loc": ("sources", name, "options", *e["loc"])} for e in err.errors()]
    return errors


def _format_errors(path: Path, node: Any, data: dict[str, Any], errors: list[dict[str, Any]]) -> str:
    specs = sources.registry()
    schema = Recipe.model_json_schema()

    def loader_of(loc: tuple[Any, ...]) -> str | None:
        if len(loc) >= 3 and loc[0] == "sources" and loc[2] == "options":
            entry = data["sources"][loc[1]]
            if isinstance(entry, dict) and entry.get("loader") in specs:
                return entry["loader"]
        return None

    def known_keys(loc: tuple[Any, ...]) -> list[str]:
        loader = loader_of(loc)
        return list(specs[loader].options.model_fields) if loader else schema_keys(schema, loc)

    lines: list[tuple[int, str]] = []
    listed: set[str] = set()
    for loc, msg in messages(errors, data, known_keys):
        key = ".".join(map(str, loc)) or "(top level)"
        line = yaml_line(node, loc)
        loader = loader_of(loc)
        if loader is not None and loc[1] not in listed:  # the valid options, once per source
            listed.add(loc[1])
            names = ", ".join(specs[loader].options.model_fields)
            msg += (
                f" (options of loader {loader!r}: {names})"
                if names
                else f" (loader {loader!r} takes no options)"
            )
        lines.append((line or 0, f"  {f'{path}:{line}' if line else path}: {key}: {msg}"))
    return "\n".join([f"{path}: invalid recipe", *(text for _, text in sorted(lines, key=lambda x: x[0]))])


def expand_patterns(what: str, patterns: list[str], base: Path, hint: str = "") -> list[Path]:
    """The files matching ``patterns`` (globs relative to ``base``), sorted per pattern, each once;
    MissingInputError naming ``what`` and the pattern when one matches nothing."""
    found: list[Path] = []
    for pattern in patterns:
        full = pattern if Path(pattern).is_absolute() else str(base / pattern)
        matches = sorted(Path(p) for p in glob.glob(full, recursive=True) if Path(p).is_file())
        if not matches:
            todo = f"run `meadow fetch` on the recipe (or put the files there by hand{hint}), or fix the path"
            raise MissingInputError(what, pattern, base, todo)
        found.extend(m for m in matches if m not in found)
    return found


def resolve_paths(name: str, entry: SourceEntry, base: Path | None = None) -> list[Path]:
    """Expand a source's path globs (relative to ``base``, default the working directory), sorted."""
    base = base or Path.cwd()
    hint = ": DATA_DESCRIPTION.md says where each source comes from"
    return expand_patterns(f"source {name!r}", entry.patterns(), base, hint)


def benchmark_paths(name: str, entry: BenchmarkEntry, base: Path) -> list[Path]:
    """A benchmark's files (globs relative to ``base``), sorted; MeadowError if a pattern matches none."""
    return expand_patterns(f"benchmark {name!r}", entry.patterns(), base)
