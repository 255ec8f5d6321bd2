"""`meadow push`: a build as a Hugging Face dataset repository, in one commit.

The build folder is verified against its ``manifest.json`` first (every output's size
and sha256): a half-written or edited build never reaches the Hub. The repository is
staged in a folder laid out the way the Hub's dataset viewer and ``datasets`` read it:

```
README.md                                 the dataset card: YAML metadata (license, task
                                          categories, size category, one config per source
                                          plus ``default`` = the merged set) + the build's card
LICENSE.md                                every source's license
merged_medical_meadow.parquet             the merged set (config ``default``)
merged_medical_meadow.json                medAlpaca's training format
data/<source>/train-00000-of-00001.parquet    one config per source
manifest.json                             the build's manifest, unchanged
recipe.yaml                               the recipe the build ran
```

(plus any other output the manifest lists). ``--stage DIR`` / ``--dry-run`` write exactly
this folder and upload nothing; a push uploads it with one ``HfApi.create_commit``. The
token comes from ``HF_TOKEN`` or the saved ``hf auth login``; it is never written or logged.
The stage / dry-run / commit flow is meadow.hub.commit's, shared with the model push (meadow.hub.model).
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq
import yaml

from meadow import __version__, sources
from meadow.build.write import size_category
from meadow.errors import MeadowError
from meadow.hub.commit import PushResult, check_repo_id, listing, publish, staging
from meadow.hub.errors import PushError
from meadow.io import file_info
from meadow.schemas.manifest import Manifest
from meadow.schemas.outputs import CARD_NAME, MANIFEST_NAME, PARQUET_NAME

RECIPE_NAME = "recipe.yaml"
LICENSE_NAME = "LICENSE.md"
SHARD = "train-00000-of-00001.parquet"
DEFAULT_CONFIG = "default"
ROW_GROUP = 10_000


@dataclass
class Staged:
    """A staged repository folder and what is in it."""

    folder: Path
    build_dir: Path
    files: list[tuple[str, int]] = field(default_factory=list)  # (path in repo, bytes)
    configs: dict[str, int] = field(default_factory=dict)  # config name -> rows


# --------------------------------------------------------------------------- the build


def find_build(build: str | Path | None, processed: str | Path = "data/processed") -> Path:
    """The build folder: as given, that of a recipe file, or the only build in ``processed``."""
    if build is not None:
        path = Path(build)
        if path.is_file() and path.suffix in (".yaml", ".yml"):
            from meadow.schemas.recipe import load_recipe

            recipe = load_recipe(path)
            return Path(recipe.output_dir) / recipe.name
        if not path.is_dir():
            raise PushError(f"{path}: no such build folder (run `meadow build RECIPE` first)")
        return path
    root = Path(processed)
    builds = sorted(p.parent for p in root.glob(f"*/{MANIFEST_NAME}"))
    if len(builds) == 1:
        return builds[0]
    if not builds:
        raise PushError(f"no build in {root}/: run `meadow build RECIPE` first, or name the build folder")
    raise PushError(
        f"{len(builds)} builds in {root}/ ({', '.join(b.name for b in builds)}): name the one to push"
    )


def verify_build(build_dir: Path) -> Manifest:
    """The build's manifest, after checking every output it lists against its size and sha256."""
    manifest_path = build_dir / MANIFEST_NAME
    if not manifest_path.is_file():
        raise PushError(
            f"{build_dir}: no {MANIFEST_NAME}, so this is not a complete meadow build (an interrupted "
            "or foreign folder): run `meadow build` again; nothing was pushed"
        )
    try:
        manifest = Manifest.read(manifest_path)
    except MeadowError as err:
        raise PushError(f"{err}; nothing was pushed") from None
    outputs = manifest.outputs
    for required in (PARQUET_NAME, CARD_NAME):
        if required not in outputs:
            raise PushError(f"{manifest_path}: lists no {required}; nothing was pushed")
    for name, expected in outputs.items():
        path = build_dir / name
        if not path.is_file():
            raise PushError(f"{path}: missing, but {MANIFEST_NAME} lists it: rebuild; nothing was pushed")
        info = file_info(path)
        if (info["bytes"], info["sha256"]) != (expected.bytes, expected.sha256):
            raise PushError(
                f"{path}: does not match {MANIFEST_NAME} (sha256 {info['sha256'][:16]}…, {info['bytes']:,} "
                f"bytes; the manifest says {expected.sha256[:16]}…, {expected.bytes} "
                "bytes): the build was changed or half-written; rebuild it. Nothing was pushed."
            )
    rows = pq.ParquetFile(build_dir / PARQUET_NAME).metadata.num_rows
    kept = sum(s.sampled for s in manifest.sources.values())
    if rows != kept:
        raise PushError(
            f"{build_dir / PARQUET_NAME}: {rows:,} rows, but the manifest's sources kept {kept:,}; rebuild"
        )
    return manifest


# --------------------------------------------------------------------------- staging


def stage(build_dir: Path, folder: Path, *, repo_id: str, manifest: Manifest | None = None) -> Staged:
    """Write the repository folder for ``build_dir`` to ``folder`` (atomically; an existing
    folder is replaced only if it is empty or an earlier stage)."""
    manifest = manifest if manifest is not None else verify_build(build_dir)
    if DEFAULT_CONFIG in manifest.sources:
        raise PushError(
            f"a source is named {DEFAULT_CONFIG!r}, the name of the merged set's config: rename it"
        )
    staged = Staged(folder=folder, build_dir=build_dir)
    with staging(folder, MANIFEST_NAME) as tmp:
        for name in manifest.outputs:
            if name != CARD_NAME:
                shutil.copyfile(build_dir / name, tmp / name)
        shutil.copyfile(build_dir / MANIFEST_NAME, tmp / MANIFEST_NAME)
        staged.configs = _split_sources(build_dir / PARQUET_NAME, manifest, tmp)
        (tmp / RECIPE_NAME).write_text(_recipe_text(manifest), encoding="utf-8")
        (tmp / LICENSE_NAME).write_text(_license_text(manifest), encoding="utf-8")
        card = (build_dir / CARD_NAME).read_text(encoding="utf-8")
        (tmp / CARD_NAME).write_text(hub_card(card, manifest, staged.configs, repo_id), encoding="utf-8")
    staged.files = listing(folder)
    return staged


def _split_sources(parquet: Path, manifest: Manifest, out: Path) -> dict[str, int]:
    """One Parquet file per source: the merged rows are in recipe order, each source's
    ``sampled`` rows in a run, so a stream of batches is cut by those counts."""
    counts = [(name, s.sampled) for name, s in manifest.sources.items()]
    configs = {DEFAULT_CONFIG: sum(n for _, n in counts)}
    pf = pq.ParquetFile(parquet)
    batches = pf.iter_batches(batch_size=ROW_GROUP)
    pending = None
    for name, count in counts:
        if count == 0:
            continue
        path = out / "data" / name / SHARD
        path.parent.mkdir(parents=True, exist_ok=True)
        left = count
        with pq.ParquetWriter(path, pf.schema_arrow, compression="zstd") as writer:
            while left:
                if pending is None or pending.num_rows == 0:
                    pending = next(batches)
                take = pending.slice(0, left)
                writer.write_batch(take, row_group_size=ROW_GROUP)
                left -= take.num_rows
                pending = pending.slice(take.num_rows)
        configs[name] = count
    return configs


def _recipe_text(manifest: Manifest) -> str:
    """The recipe file the build ran, if it is still there unchanged; else the manifest's copy."""
    path = Path(manifest.recipe_path)
    if path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() == manifest.recipe_sha256:
        return path.read_text(encoding="utf-8")
    return (
        f"# The recipe of this build as meadow resolved it (from {MANIFEST_NAME}; the original\n"
        f"# {path.name or 'file'} had sha256 {manifest.recipe_sha256 or '?'}).\n"
        + yaml.safe_dump(manifest.recipe, sort_keys=False, allow_unicode=True)
    )


def _licenses(manifest: Manifest) -> list[tuple[str, str, str]]:
    specs = sources.registry()
    out = []
    for name, s in manifest.sources.items():
        spec = specs.get(s.loader)
        out.append((name, s.loader or "?", spec.license if spec else "see the source"))
    return out


def _license_text(manifest: Manifest) -> str:
    rows = "\n".join(f"| {name} | `{loader}` | {lic} |" for name, loader, lic in _licenses(manifest))
    return f"""# Licenses

This dataset combines several upstream sources; each keeps its own license and terms.
Cite every source you use (see README.md). The code that built it (meadow) is Apache-2.0.

| source | loader | license |
|---|---|---|
{rows}

Medical Meadow is research data, **not for clinical use**.
"""


def hub_card(build_card: str, manifest: Manifest, configs: dict[str, int], repo_id: str) -> str:
    """The build's card with the Hub's YAML metadata (one config per source) and a usage section."""
    body = build_card
    if body.startswith("---\n"):
        end = body.find("\n---\n", 4)
        body = body[end + 5 :] if end != -1 else body
    name = manifest.recipe.get("name", "medical_meadow")
    meta = {
        "pretty_name": name,
        "license": "other",
        "license_name": "medical-meadow-mixed",
        "license_link": LICENSE_NAME,
        "language": ["en"],
        "task_categories": ["question-answering", "text-generation"],
        "tags": ["medical", "instruction-tuning", "medalpaca"],
        "size_categories": [size_category(configs[DEFAULT_CONFIG])],
        "configs": [
            {
                "config_name": DEFAULT_CONFIG,
                "data_files": [{"split": "train", "path": PARQUET_NAME}],
                "default": True,
            },
            *(
                {"config_name": c, "data_files": [{"split": "train", "path": f"data/{c}/train-*.parquet"}]}
                for c in configs
                if c != DEFAULT_CONFIG
            ),
        ],
    }
    front = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, width=1000)
    rows = "\n".join(
        f"| `{c}` | {'all sources, merged' if c == DEFAULT_CONFIG else f'`data/{c}/`'} | {n:,} |"
        for c, n in configs.items()
    )
    example = next((c for c in configs if c != DEFAULT_CONFIG), DEFAULT_CONFIG)
    usage = f"""
## Loading

```python
from datasets import load_dataset

merged = load_dataset("{repo_id}")  # config "default": every source
one = load_dataset("{repo_id}", "{example}")  # one source
```

| config | files | rows |
|---|---|---:|
{rows}

`{RECIPE_NAME}` is the recipe this build ran and `{MANIFEST_NAME}` its manifest (counts, drop reasons,
input and output hashes); `{LICENSE_NAME}` lists each source's license. Pushed by meadow {__version__}.
"""
    marker = "\n## Citations"
    if marker in body:
        head, tail = body.split(marker, 1)
        body = head.rstrip("\n") + "\n" + usage + marker + tail
    else:
        body = body.rstrip("\n") + "\n" + usage
    return f"---\n{front}---\n{body}"


# --------------------------------------------------------------------------- the push


def push(
    build: str | Path | None,
    *,
    repo_id: str,
    private: bool = False,
    revision: str | None = None,
    dry_run: bool = False,
    stage_dir: str | Path | None = None,
    commit_message: str | None = None,
) -> PushResult:
    """Verify and stage a build, then (unless ``dry_run`` or ``stage_dir``) upload it in one commit."""
    check_repo_id(repo_id)
    build_dir = find_build(build)
    manifest = verify_build(build_dir)

    def commit(staged: Staged) -> tuple[str, str]:
        n = staged.configs.get(DEFAULT_CONFIG, 0)
        return (
            commit_message or f"meadow {__version__}: {staged.build_dir.name}, {n:,} records",
            f"Pushed by `meadow push` from {staged.build_dir.name}; see manifest.json.",
        )

    return publish(
        lambda folder, _temporary: stage(build_dir, folder, repo_id=repo_id, manifest=manifest),
        commit,
        repo_id,
        repo_type="dataset",
        private=private,
        revision=revision,
        dry_run=dry_run,
        stage_dir=stage_dir,
    )
