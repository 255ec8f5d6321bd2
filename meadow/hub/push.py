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
A trained model (``meadow push --model``) is pushed by ``meadow.hub.push_model`` through ``upload``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import yaml

from meadow import __version__, sources
from meadow.build.write import size_category
from meadow.errors import MeadowError
from meadow.hub.auth import hf_endpoint, hf_token
from meadow.io import atomic_dir, file_info
from meadow.schemas.outputs import CARD_NAME, MANIFEST_NAME, PARQUET_NAME

log = logging.getLogger(__name__)

RECIPE_NAME = "recipe.yaml"
LICENSE_NAME = "LICENSE.md"
SHARD = "train-00000-of-00001.parquet"
DEFAULT_CONFIG = "default"
ROW_GROUP = 10_000


class PushError(MeadowError):
    """A build that cannot be pushed, or a push the Hub refused."""


@dataclass
class Staged:
    """A staged repository folder and what is in it."""

    folder: Path
    build_dir: Path
    files: list[tuple[str, int]] = field(default_factory=list)  # (path in repo, bytes)
    configs: dict[str, int] = field(default_factory=dict)  # config name -> rows


@dataclass
class PushResult:
    staged: Any
    """What was staged: a ``Staged`` build, or a ``push_model.StagedModel``."""
    repo_id: str
    commit_url: str | None = None
    commit_oid: str | None = None
    uploaded: bool = False
    operations: list[Any] = field(default_factory=list)


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


def verify_build(build_dir: Path) -> dict[str, Any]:
    """The build's manifest, after checking every output it lists against its size and sha256."""
    manifest_path = build_dir / MANIFEST_NAME
    if not manifest_path.is_file():
        raise PushError(
            f"{build_dir}: no {MANIFEST_NAME}, so this is not a complete meadow build (an interrupted "
            "or foreign folder): run `meadow build` again; nothing was pushed"
        )
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        outputs = manifest["outputs"]
        sources_ = manifest["sources"]
        if not isinstance(outputs, dict) or not isinstance(sources_, dict):
            raise TypeError("'outputs' and 'sources' must be mappings")
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise PushError(f"{manifest_path}: not a meadow build manifest ({err}); nothing was pushed") from None
    for required in (PARQUET_NAME, CARD_NAME):
        if required not in outputs:
            raise PushError(f"{manifest_path}: lists no {required}; nothing was pushed")
    for name, expected in outputs.items():
        path = build_dir / name
        if not path.is_file():
            raise PushError(f"{path}: missing, but {MANIFEST_NAME} lists it: rebuild; nothing was pushed")
        info = file_info(path)
        if (info["bytes"], info["sha256"]) != (expected.get("bytes"), expected.get("sha256")):
            raise PushError(
                f"{path}: does not match {MANIFEST_NAME} (sha256 {info['sha256'][:16]}…, {info['bytes']:,} "
                f"bytes; the manifest says {str(expected.get('sha256'))[:16]}…, {expected.get('bytes')} "
                "bytes): the build was changed or half-written; rebuild it. Nothing was pushed."
            )
    rows = pq.ParquetFile(build_dir / PARQUET_NAME).metadata.num_rows
    kept = sum(int(s.get("sampled", 0)) for s in sources_.values())
    if rows != kept:
        raise PushError(
            f"{build_dir / PARQUET_NAME}: {rows:,} rows, but the manifest's sources kept {kept:,}; rebuild"
        )
    return manifest


# --------------------------------------------------------------------------- staging


def stage(build_dir: Path, folder: Path, *, repo_id: str, manifest: dict[str, Any] | None = None) -> Staged:
    """Write the repository folder for ``build_dir`` to ``folder`` (atomically; an existing
    folder is replaced only if it is empty or an earlier stage)."""
    manifest = manifest if manifest is not None else verify_build(build_dir)
    if DEFAULT_CONFIG in manifest["sources"]:
        raise PushError(
            f"a source is named {DEFAULT_CONFIG!r}, the name of the merged set's config: rename it"
        )
    if folder.exists() and any(folder.iterdir()) and not (folder / MANIFEST_NAME).is_file():
        raise PushError(f"{folder}: not empty and not an earlier stage: choose a new or empty folder")
    staged = Staged(folder=folder, build_dir=build_dir)
    with atomic_dir(folder) as tmp:
        for name in manifest["outputs"]:
            if name != CARD_NAME:
                shutil.copyfile(build_dir / name, tmp / name)
        shutil.copyfile(build_dir / MANIFEST_NAME, tmp / MANIFEST_NAME)
        staged.configs = _split_sources(build_dir / PARQUET_NAME, manifest, tmp)
        (tmp / RECIPE_NAME).write_text(_recipe_text(manifest), encoding="utf-8")
        (tmp / LICENSE_NAME).write_text(_license_text(manifest), encoding="utf-8")
        card = (build_dir / CARD_NAME).read_text(encoding="utf-8")
        (tmp / CARD_NAME).write_text(hub_card(card, manifest, staged.configs, repo_id), encoding="utf-8")
    staged.files = sorted(
        (p.relative_to(folder).as_posix(), p.stat().st_size) for p in folder.rglob("*") if p.is_file()
    )
    return staged


def _split_sources(parquet: Path, manifest: dict[str, Any], out: Path) -> dict[str, int]:
    """One Parquet file per source: the merged rows are in recipe order, each source's
    ``sampled`` rows in a run, so a stream of batches is cut by those counts."""
    counts = [(name, int(s.get("sampled", 0))) for name, s in manifest["sources"].items()]
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


def _recipe_text(manifest: dict[str, Any]) -> str:
    """The recipe file the build ran, if it is still there unchanged; else the manifest's copy."""
    path = Path(manifest.get("recipe_path", ""))
    if path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() == manifest.get("recipe_sha256"):
        return path.read_text(encoding="utf-8")
    return (
        f"# The recipe of this build as meadow resolved it (from {MANIFEST_NAME}; the original\n"
        f"# {path.name or 'file'} had sha256 {manifest.get('recipe_sha256', '?')}).\n"
        + yaml.safe_dump(manifest["recipe"], sort_keys=False, allow_unicode=True)
    )


def _licenses(manifest: dict[str, Any]) -> list[tuple[str, str, str]]:
    specs = sources.registry()
    out = []
    for name, s in manifest["sources"].items():
        spec = specs.get(s.get("loader", ""))
        out.append((name, s.get("loader", "?"), spec.license if spec else "see the source"))
    return out


def _license_text(manifest: dict[str, Any]) -> str:
    rows = "\n".join(f"| {name} | `{loader}` | {lic} |" for name, loader, lic in _licenses(manifest))
    return f"""# Licenses

This dataset combines several upstream sources; each keeps its own license and terms.
Cite every source you use (see README.md). The code that built it (meadow) is Apache-2.0.

| source | loader | license |
|---|---|---|
{rows}

Medical Meadow is research data, **not for clinical use**.
"""


def hub_card(build_card: str, manifest: dict[str, Any], configs: dict[str, int], repo_id: str) -> str:
    """The build's card with the Hub's YAML metadata (one config per source) and a usage section."""
    body = build_card
    if body.startswith("---\n"):
        end = body.find("\n---\n", 4)
        body = body[end + 5 :] if end != -1 else body
    name = manifest["recipe"].get("name", "medical_meadow")
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


def operations(staged: Any) -> list[Any]:
    """One ``CommitOperationAdd`` per staged file (``staged.files``, in ``staged.folder``), in path order."""
    from huggingface_hub import CommitOperationAdd

    return [
        CommitOperationAdd(path_in_repo=path, path_or_fileobj=str(staged.folder / path))
        for path, _ in staged.files
    ]


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


# --------------------------------------------------------------------------- shared with push_model


def publish(
    stage_to: Callable[[Path, bool], Any],
    commit: Callable[[Any], tuple[str, str]],
    repo_id: str,
    *,
    repo_type: str,
    private: bool,
    revision: str | None,
    dry_run: bool,
    stage_dir: str | Path | None,
) -> PushResult:
    """Stage, then upload in one commit: the flow of both pushes.

    ``stage_to(folder, temporary)`` stages the repository into ``folder`` (``temporary``: a folder
    removed afterwards, so weights may be hard-linked); ``commit(staged)`` gives the commit's
    message and description. ``stage_dir`` keeps the staged folder there and uploads nothing;
    ``dry_run`` stages into a temporary folder and uploads nothing; otherwise the token is
    required before anything is staged.
    """
    if stage_dir is not None:
        staged = stage_to(Path(stage_dir), False)
        return PushResult(staged, repo_id, operations=operations(staged))
    token = None if dry_run else require_token()
    with tempfile.TemporaryDirectory(prefix="meadow-stage-" if dry_run else "meadow-push-") as tmp:
        staged = stage_to(Path(tmp) / "repo", True)
        ops = operations(staged)
        if token is None:
            result = PushResult(staged, repo_id, operations=ops)
        else:
            message, description = commit(staged)
            info = upload(
                ops,
                token,
                repo_id,
                repo_type=repo_type,
                private=private,
                revision=revision,
                commit_message=message,
                commit_description=description,
            )
            result = PushResult(staged, repo_id, info.commit_url, info.oid, True, ops)
    kept = "; --stage DIR keeps it" if token is None else ""
    staged.folder = Path(f"(a temporary folder, removed{kept})")
    return result


def check_repo_id(repo_id: str) -> None:
    if "/" not in repo_id or repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise PushError(f"--repo-id {repo_id!r}: expected ORG/NAME (or USER/NAME)")


def require_token() -> str:
    """``HF_TOKEN`` or the saved login's token; never written or logged."""
    token = hf_token()
    if not token:
        raise PushError(
            "no Hugging Face token: create one with write access at https://huggingface.co/settings/tokens "
            "and set HF_TOKEN, or run `hf auth login`. Nothing was pushed."
        )
    return token


def upload(
    ops: list[Any],
    token: str,
    repo_id: str,
    *,
    repo_type: str,
    private: bool,
    revision: str | None,
    commit_message: str,
    commit_description: str,
) -> Any:
    """Create the repository (and branch) if missing, then ``ops`` in one ``create_commit``."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    endpoint = hf_endpoint()
    where = f"datasets/{repo_id}" if repo_type == "dataset" else repo_id
    api = HfApi(endpoint=endpoint, token=token, library_name="meadow", library_version=__version__)
    step = "check the token"
    try:
        user = api.whoami(token=token)
        log.info("pushing to %s/%s as %s", endpoint, where, user.get("name", "?"))
        step = "create the repository"
        api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True, token=token)
        if revision and revision != "main":
            step = f"create the branch {revision!r}"
            api.create_branch(repo_id, repo_type=repo_type, branch=revision, exist_ok=True, token=token)
        step = "commit"
        return api.create_commit(
            repo_id,
            ops,
            commit_message=commit_message,
            commit_description=commit_description,
            repo_type=repo_type,
            revision=revision,
            token=token,
        )
    except HfHubHTTPError as err:
        code = err.response.status_code if err.response is not None else None
        if code == 401:
            raise PushError(
                f"the Hub ({endpoint}) rejected the token from "
                f"{'HF_TOKEN' if _from_env(token) else 'the saved login'} (HTTP 401 while trying to "
                f"{step}): create a token with write access at https://huggingface.co/settings/tokens "
                "and set HF_TOKEN, or run `hf auth login`. Nothing was pushed."
            ) from None
        if code == 403:
            raise PushError(
                f"the Hub ({endpoint}) refused to {step} for {where} (HTTP 403): the token "
                "has no write access to that namespace. Nothing was pushed."
            ) from None
        raise PushError(f"the Hub ({endpoint}) failed to {step}: {_redact(err, token)}") from None
    except (OSError, ValueError) as err:
        raise PushError(f"cannot {step} on {endpoint}: {_redact(err, token)}") from None
    except Exception as err:  # connection errors of the hub's HTTP client (httpx / httpx2)
        if type(err).__module__.split(".")[0] not in ("httpx", "httpx2", "httpcore", "httpcore2"):
            raise
        raise PushError(f"cannot reach {endpoint} to {step}: {_redact(err, token)}") from None


def _from_env(token: str) -> bool:
    return os.environ.get("HF_TOKEN", "").strip() == token


def _redact(err: BaseException, token: str) -> str:
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return text.replace(token, "***") if token else text
