"""The output folder of a `meadow train` run, as `meadow push --model` reads it.

Which weights are pushed (the LoRA adapter, the merged weights or the full weights of a run
without LoRA), which files go with them and which are left out (and why), and the base model
the run started from: its Hub id and license, for the card and the adapter's
``base_model_name_or_path``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from meadow.hub.errors import PushError
from meadow.schemas.outputs import MERGED_DIR, TRAIN_CARD_NAME, TRAIN_CONFIG_NAME, TRAIN_RUN_NAME

log = logging.getLogger(__name__)

Kind = Literal["adapter", "merged", "full"]

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
MODEL_FILES = ("config.json", "generation_config.json")
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "chat_template.jinja",
    "chat_template.json",
    "vocab.json",
    "vocab.txt",
    "merges.txt",
    "tokenizer.model",
    "spiece.model",
)


@dataclass
class BaseModelInfo:
    """The model the run started from."""

    hub_id: str | None
    """Its Hub repository (the card's ``base_model``, the adapter's ``base_model_name_or_path``)."""
    trained_on: str
    """What training loaded, as meadow names it (``name@sha12``, or the ``--model`` value)."""
    sha256: str | None = None
    note: str | None = None
    license: str | None = None


@dataclass
class TrainingRun:
    """An output folder of `meadow train` and what of it is pushed."""

    output_dir: Path
    kind: Kind
    weights_dir: Path
    config: dict[str, Any]
    run: dict[str, Any] | None
    files: list[str]
    """Names in ``weights_dir`` that are pushed as they are."""
    left_out: list[tuple[str, str]] = field(default_factory=list)
    """(path relative to output_dir, why) for everything else."""


def find_run(output_dir: str | Path, *, merged: bool = False) -> TrainingRun:
    """The training run in ``output_dir``, and which of its weights to push (see the module doc)."""
    out = Path(output_dir)
    if not out.is_dir():
        raise PushError(f"{out}: no such folder (the --output_dir of a `meadow train` run)")
    if out.name.startswith("checkpoint-"):
        raise PushError(
            f"{out}: a Trainer checkpoint (it holds optimizer states, which are never pushed): push its "
            f"run's output folder {out.parent} instead. Nothing was pushed."
        )
    config_path = out / TRAIN_CONFIG_NAME
    if not config_path.is_file():
        raise PushError(
            f"{out}: no {TRAIN_CONFIG_NAME}, so this is not the output folder of a finished "
            "`meadow train` run "
            f"(expected {TRAIN_CONFIG_NAME} beside the adapter or weights). Nothing was pushed."
        )
    config = read_json(config_path, "the training settings")
    run = read_json(out / TRAIN_RUN_NAME, "the run record") if (out / TRAIN_RUN_NAME).is_file() else None

    adapter = (out / ADAPTER_CONFIG).is_file()
    kind: Kind
    if merged:
        kind, weights_dir = "merged", out / MERGED_DIR
        if not _has_model(weights_dir):
            raise PushError(
                f"{weights_dir}: no merged weights (expected config.json and *.safetensors, written by "
                "`meadow train --merge True`). Nothing was pushed."
            )
    elif adapter:
        kind, weights_dir = "adapter", out
        if not (out / ADAPTER_WEIGHTS).is_file():
            found = ", ".join(sorted(p.name for p in out.glob("adapter_model.*"))) or "none"
            raise PushError(
                f"{out}: {ADAPTER_CONFIG} but no {ADAPTER_WEIGHTS} (found: {found}; pickled weights are "
                "not pushed). Nothing was pushed."
            )
    elif _has_model(out):
        kind, weights_dir = "full", out
    elif _has_model(out / MERGED_DIR):
        kind, weights_dir = "merged", out / MERGED_DIR
        log.info("%s holds no adapter: pushing the merged weights in %s", out, weights_dir)
    else:
        raise PushError(
            f"{out}: no weights to push: expected {ADAPTER_CONFIG} + {ADAPTER_WEIGHTS} (a LoRA run), "
            f"config.json + *.safetensors (a run without LoRA) or {MERGED_DIR}/ (--merge True). "
            "Nothing was pushed."
        )

    if kind == "adapter":
        wanted = {ADAPTER_CONFIG, ADAPTER_WEIGHTS, *TOKENIZER_FILES}
    else:
        wanted = {*MODEL_FILES, *TOKENIZER_FILES}
        wanted |= {p.name for p in weights_dir.glob("*.safetensors")}
        wanted |= {p.name for p in weights_dir.glob("*.safetensors.index.json")}
    files = sorted(p.name for p in weights_dir.iterdir() if p.is_file() and p.name in wanted)
    left_out = _left_out(out, weights_dir, set(files))
    return TrainingRun(out, kind, weights_dir, config, run, files, left_out)


def read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise PushError(f"{path}: cannot read {what}: {err.strerror}") from None
    except json.JSONDecodeError as err:
        raise PushError(f"{path}:{err.lineno}: invalid JSON ({what}): {err.msg}") from None
    if not isinstance(data, dict):
        raise PushError(f"{path}: {what} must be a JSON object")
    return data


def _has_model(folder: Path) -> bool:
    return (folder / "config.json").is_file() and any(folder.glob("*.safetensors"))


def _left_out(out: Path, weights_dir: Path, taken: set[str]) -> list[tuple[str, str]]:
    known = {TRAIN_CONFIG_NAME, TRAIN_RUN_NAME}
    left = []
    for path in sorted(out.iterdir()):
        name = path.name
        if path.is_dir():
            if name.startswith("checkpoint-"):
                left.append((f"{name}/", "Trainer checkpoint (optimizer states)"))
            elif name == MERGED_DIR and weights_dir != path:
                left.append((f"{name}/", "merged weights (--merged pushes them instead of the adapter)"))
            elif path != weights_dir:
                left.append((f"{name}/", "not part of a model"))
        elif weights_dir == out and name in taken or name in known:
            continue
        elif name == "training_args.bin":
            left.append((name, "the Trainer's arguments, a pickle (meadow_train.json has the settings)"))
        elif name == TRAIN_CARD_NAME:
            left.append((name, "replaced by the model card"))
        elif weights_dir != out:
            left.append((name, "not part of the merged weights"))
        else:
            left.append((name, "not a weight, config or tokenizer file"))
    if weights_dir != out:
        prefix = f"{weights_dir.name}/"
        for path in sorted(weights_dir.iterdir()):
            if path.name not in taken:
                left.append((prefix + path.name, "not a weight, config or tokenizer file"))
    return left


def base_model(
    run: TrainingRun, *, override: str | None = None, license_override: str | None = None
) -> BaseModelInfo:
    """The base model: its Hub id, from ``override``, the run record or the ``--model`` setting."""
    from meadow.models import DEFAULT_MODEL, SMOLLM2_NAME, hub_repo_id

    model = run.config.get("model")
    recorded = (run.run or {}).get("base_model") or {}
    hub_id = override
    if hub_id is None:
        loaded_from = ()
        if (run.output_dir / ADAPTER_CONFIG).is_file():
            adapter = read_json(run.output_dir / ADAPTER_CONFIG, "the adapter's settings")
            loaded_from = (adapter.get("base_model_name_or_path"),)
        hub_id = hub_repo_id(None if model is None else str(model), recorded.get("name"), loaded_from)
    note = None
    if model in (None, DEFAULT_MODEL) or recorded.get("gguf"):
        gguf = recorded.get("gguf") or f"{SMOLLM2_NAME}.Q4_1.gguf"
        what = "meadow's embedded default model" if model in (None, DEFAULT_MODEL) else "a GGUF file"
        note = f"Training started from {what}, `{gguf}`, dequantized to float32. " + (
            f"The adapter's `base_model_name_or_path` names `{hub_id}`, the original weights, which "
            "differ from the dequantized ones by the quantization error: the adapter applies to both, "
            "but exactly reproduces the training-time model only on the dequantized GGUF."
            if run.kind == "adapter" and hub_id
            else "The weights here are complete; the base is named for its lineage and license."
        )
    trained_on = recorded.get("identity") or ("embedded default (SmolLM2)" if model is None else str(model))
    return BaseModelInfo(
        hub_id=hub_id,
        trained_on=trained_on,
        sha256=recorded.get("sha256"),
        note=note,
        license=license_override or (base_license(hub_id) if hub_id else None),
    )


def base_license(hub_id: str) -> str | None:
    """The base model's license: from its card in the local Hub cache, else for SmolLM2 (Apache-2.0)."""
    try:
        from huggingface_hub import try_to_load_from_cache

        card = try_to_load_from_cache(hub_id, "README.md")
    except Exception:  # noqa: BLE001 - an invalid id or an unreadable cache: no license known
        card = None
    if isinstance(card, str):
        try:
            text = Path(card).read_text(encoding="utf-8")
            if text.startswith("---"):
                meta = yaml.safe_load(text[3 : text.index("\n---", 3)])
                if isinstance(meta, dict) and isinstance(meta.get("license"), str):
                    return meta["license"]
        except (OSError, ValueError, yaml.YAMLError):
            pass
    from meadow.models import is_smollm

    org, _, name = hub_id.partition("/")
    if org == "HuggingFaceTB" and is_smollm(name):
        return "apache-2.0"
    return None
