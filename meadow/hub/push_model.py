"""`meadow push --model`: what `meadow train` wrote, as a Hugging Face model repository, in one commit.

medAlpaca published its model zoo as Hub repositories; this publishes a meadow training run the
same way. The run's output folder (its ``--output_dir``) must hold ``meadow_train.json`` (the
settings) and weights; what is pushed is one of:

- ``adapter``: the LoRA adapter (``adapter_config.json`` + ``adapter_model.safetensors``), the
  default when there is one. Its ``base_model_name_or_path`` (a local folder at training time)
  is rewritten to the base model's Hub id, so ``AutoPeftModelForCausalLM`` loads it anywhere;
- ``merged``: ``OUTPUT_DIR/merged`` (``--merge True``), with ``merged=True``, or when the folder
  holds no adapter;
- ``full``: the full weights of a run without LoRA (``config.json`` + ``*.safetensors``).

The staged repository:

```
README.md                the model card: YAML metadata (license, base_model, library_name, tags,
                         datasets, pipeline_tag) + base model, data build, settings, losses,
                         evaluation table, how to load it, and that it is not for clinical use
adapter_config.json + adapter_model.safetensors     (or config.json, *.safetensors, ...)
tokenizer files          tokenizer.json, tokenizer_config.json, chat_template.jinja, ...
meadow_train.json        the training settings (medAlpaca's flag names)
meadow_train_run.json    base model identity, data provenance and final metrics, if the run wrote it
prompt_template.json     the prompt template the model was trained with
eval/<name>.json         each ``--eval`` results file, unchanged
```

Only those files are taken: Trainer checkpoints (``checkpoint-*``, with optimizer states),
``training_args.bin`` (a pickle) and any other file are left out and listed. The rules are those
of the dataset push: ``--stage DIR`` / ``--dry-run`` upload nothing and need no token, a push
is one ``create_commit``, the token (``HF_TOKEN`` or the saved login) is never written or logged.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from meadow import __version__
from meadow.errors import MeadowError
from meadow.hub.push import PushError, PushResult, check_repo_id, publish
from meadow.schemas.outputs import MERGED_DIR, TEMPLATE_NAME, TRAIN_CONFIG_NAME, TRAIN_RUN_NAME

log = logging.getLogger(__name__)

Kind = Literal["adapter", "merged", "full"]

CARD_NAME = "README.md"
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
SMOLLM2_HUB = "HuggingFaceTB/SmolLM2-135M-Instruct"
"""The Hub repository of meadow's embedded default model (shipped as a Q4_1 GGUF)."""

_SMOLLM = re.compile(r"^SmolLM2?-\d+(\.\d+)?[MB](-Instruct)?$")
_SNAPSHOT = re.compile(r"models--([^/]+)--([^/]+)/snapshots/")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_NEVER = re.compile(
    r"(^|/)(checkpoint-[^/]*/|optimizer\.pt$|scheduler\.pt$|rng_state[^/]*\.pth$|[^/]*\.bin$)"
)
"""Paths that must never reach the repository: Trainer checkpoints, optimizer states, pickles."""

CAVEAT = """> **Not for clinical use.** This model is a research artifact for studying medical language
> models. It has not been validated for diagnosis, treatment, triage or any other medical decision.
> Its answers can be wrong, out of date or invented while sounding confident, and the small
> evaluation below says little about how it behaves on real patients' questions. Do not use it to
> give medical advice or anywhere its output could reach a patient or a clinician's decision.
> As with medAlpaca's models, its use is for research only."""


# --------------------------------------------------------------------------- the training run


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
    config = _read_json(config_path, "the training settings")
    run = _read_json(out / TRAIN_RUN_NAME, "the run record") if (out / TRAIN_RUN_NAME).is_file() else None

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


def _read_json(path: Path, what: str) -> dict[str, Any]:
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
        elif name == CARD_NAME:
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
    from meadow.models import DEFAULT_MODEL, SMOLLM2_NAME, gguf_name

    model = run.config.get("model")
    recorded = (run.run or {}).get("base_model") or {}
    name = recorded.get("name")
    hub_id = override
    if hub_id is None:
        candidates = [model]
        if (run.output_dir / ADAPTER_CONFIG).is_file():
            adapter = _read_json(run.output_dir / ADAPTER_CONFIG, "the adapter's settings")
            candidates.append(adapter.get("base_model_name_or_path"))
        for value in candidates:
            found = _snapshot_id(value)
            if found:
                hub_id = found
                break
    if hub_id is None:
        if model in (None, DEFAULT_MODEL):
            hub_id = SMOLLM2_HUB
        elif name and _HUB_ID.match(name):  # resolve_model names a Hub model by its id
            hub_id = name
        elif not name and _HUB_ID.match(str(model)) and not Path(str(model)).expanduser().exists():
            hub_id = str(model)
        else:
            stem = name or (gguf_name(Path(model)) if str(model).endswith(".gguf") else Path(model).name)
            hub_id = f"HuggingFaceTB/{stem}" if _SMOLLM.match(stem) else None
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


def _snapshot_id(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    match = _SNAPSHOT.search(value.replace("\\", "/"))
    return f"{match[1]}/{match[2]}" if match else None


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
    org, _, name = hub_id.partition("/")
    if org == "HuggingFaceTB" and _SMOLLM.match(name):
        return "apache-2.0"
    return None


def data_info(run: TrainingRun) -> tuple[dict[str, Any] | None, str | None]:
    """The data provenance: as the run recorded it, else looked up now from ``data_path``; and a
    note on where it came from (None: recorded by the run)."""
    recorded = (run.run or {}).get("data")
    if recorded:
        return recorded, None
    from meadow.train.trainer import data_provenance

    data_path = run.config.get("data_path")
    try:
        return data_provenance(data_path), "looked up when pushing: the run recorded none"
    except (MeadowError, OSError, TypeError) as err:
        log.warning("the training data %s: %s", data_path, err)
        return None, f"`{data_path}` could not be read when pushing ({err}), and the run recorded none"


def losses(run: TrainingRun) -> dict[str, Any]:
    """Final metrics: from the run record, else the newest checkpoint's ``trainer_state.json``."""
    metrics = dict((run.run or {}).get("metrics") or {})
    if run.run and "global_step" in run.run:
        metrics.setdefault("global_step", run.run["global_step"])
    if metrics:
        return metrics
    states = [run.output_dir / "trainer_state.json"]
    states += sorted(run.output_dir.glob("checkpoint-*/trainer_state.json"), key=_step, reverse=True)
    for path in states:
        if path.is_file():
            try:
                state = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            history = state.get("log_history") or []
            for key, out_key in (("loss", "last_train_loss"), ("eval_loss", "eval_loss")):
                values = [h[key] for h in history if isinstance(h.get(key), (int, float))]
                if values:
                    metrics[out_key] = values[-1]
            metrics["global_step"] = state.get("global_step")
            metrics["epoch"] = state.get("epoch")
            metrics["source"] = path.relative_to(run.output_dir).as_posix()
            return metrics
    return {}


def _step(path: Path) -> int:
    try:
        return int(path.parent.name.rsplit("-", 1)[-1])
    except ValueError:
        return -1


# --------------------------------------------------------------------------- evaluation results


@dataclass
class EvalResult:
    path: Path
    repo_path: str
    results: dict[str, Any]


def load_evals(paths: list[Path] | None) -> list[EvalResult]:
    from meadow.eval.results import load_results

    out: list[EvalResult] = []
    used: set[str] = set()
    for path in paths or []:
        results = load_results(path)
        stem = path.parent.name if path.name == "results.json" and path.parent.name else path.stem
        stem = re.sub(r"[^\w.-]+", "-", stem).strip("-.") or "results"
        name, i = stem, 1
        while name in used:
            i += 1
            name = f"{stem}-{i}"
        used.add(name)
        out.append(EvalResult(path, f"eval/{name}.json", results))
    return out


# --------------------------------------------------------------------------- the card


def model_card(
    run: TrainingRun,
    base: BaseModelInfo,
    *,
    repo_id: str,
    dataset_repo_id: str | None,
    evals: list[EvalResult],
    weights_sha256: str | None,
    files: list[tuple[str, int]],
) -> str:
    """README.md: the Hub's YAML metadata, then what the model is, how it was made, how to use it."""
    adapter = run.kind == "adapter"
    meta: dict[str, Any] = {"license": base.license or "other"}
    if meta["license"] == "other":
        meta["license_name"] = "see-base-model-and-data"
        if base.hub_id:
            meta["license_link"] = f"https://huggingface.co/{base.hub_id}"
    if base.hub_id:
        meta["base_model"] = base.hub_id
        meta["base_model_relation"] = "adapter" if adapter else "finetune"
    meta["library_name"] = "peft" if adapter else "transformers"
    meta["tags"] = ["medical", "medalpaca", "meadow", *(["lora"] if adapter else [])]
    if dataset_repo_id:
        meta["datasets"] = [dataset_repo_id]
    meta["language"] = ["en"]
    meta["pipeline_tag"] = "text-generation"
    front = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, width=1000)

    what = {
        "adapter": "A LoRA adapter for",
        "merged": "The full weights (base model and LoRA adapter merged) of",
        "full": "A full fine-tune of",
    }[run.kind]
    base_link = (
        f"[{base.hub_id}](https://huggingface.co/{base.hub_id})" if base.hub_id else f"`{base.trained_on}`"
    )
    data, data_note = data_info(run)
    build = (data or {}).get("build")
    trained_on = f"the Medical Meadow build `{build['recipe']}`" if build else "medical instruction data"
    name = repo_id.split("/", 1)[1]
    sections = [
        f"# {name}\n",
        f"{what} {base_link}, fine-tuned on {trained_on} with `meadow train`, medAlpaca's training "
        "recipe (its `train.py` flags, prompt template and defaults) on today's transformers and peft. "
        "meadow rebuilds the Medical Meadow data of [medAlpaca](https://github.com/kbressem/medAlpaca) "
        f"from the upstream sources. Pushed by meadow {__version__}.\n",
        CAVEAT + "\n",
        _base_section(base, weights_sha256, adapter),
        _data_section(data, data_note, dataset_repo_id),
        _training_section(run),
        _eval_section(evals, weights_sha256),
        _usage_section(run, repo_id),
        _files_section(files),
        _citation_section(),
    ]
    return f"---\n{front}---\n\n" + "\n".join(s.rstrip("\n") + "\n" for s in sections)


def _base_section(base: BaseModelInfo, weights_sha256: str | None, adapter: bool) -> str:
    rows = [
        ("base model", f"[{base.hub_id}](https://huggingface.co/{base.hub_id})" if base.hub_id else "unknown")
    ]
    rows.append(("loaded for training", f"`{base.trained_on}`"))
    if base.sha256:
        rows.append(("its weights' sha256", f"`{base.sha256}`"))
    rows.append(
        ("license", f"`{base.license}`" if base.license else "see the base model (unknown to meadow)")
    )
    if weights_sha256:
        rows.append(
            (
                f"{'adapter' if adapter else 'weights'} sha256 (as `meadow eval` reports it)",
                f"`{weights_sha256}`",
            )
        )
    text = "## Base model\n\n" + _table(rows)
    if base.note:
        text += f"\n{base.note}\n"
    if not base.hub_id:
        text += (
            "\nThe base model is a local model without a known Hub repository, so the card names no "
            "`base_model`; these weights are complete without it.\n"
        )
    return text


def _data_section(data: dict[str, Any] | None, note: str | None, dataset_repo_id: str | None) -> str:
    text = "## Training data\n\n"
    if data is None:
        return text + f"Unknown: {note}.\n"
    rows = []
    if dataset_repo_id:
        rows.append(("dataset", f"[{dataset_repo_id}](https://huggingface.co/datasets/{dataset_repo_id})"))
    build = data.get("build")
    if build:
        rows.append(("meadow build (recipe name)", f"`{build['recipe']}`"))
        rows.append(("build's `manifest.json` sha256", f"`{build['manifest_sha256']}`"))
        if build.get("recipe_sha256"):
            rows.append(("recipe sha256", f"`{build['recipe_sha256']}`"))
        if build.get("records") is not None:
            rows.append(("records in the build", f"{build['records']:,}"))
    rows.append(("data file", f"`{data['file']}` (`--data_path {data['path']}`)"))
    rows.append(("data file sha256", f"`{data['sha256']}`"))
    rows.append(("records trained on (before the validation split)", f"{data['records']:,}"))
    text += _table(rows)
    if build and not build.get("matches_manifest", True):
        text += (
            "\n**The data file differs from the one the build's manifest.json lists**: it was changed "
            "after the build, so the recipe and manifest above describe it only approximately.\n"
        )
    if build:
        text += (
            "\nEach source of the data keeps its own license and terms (see the dataset's LICENSE.md "
            "and card); they apply to what was learned from it as much as the base model's license does.\n"
        )
    else:
        text += "\nNot a meadow build (no manifest.json beside the data file).\n"
    if note:
        text += f"\nProvenance {note}.\n"
    return text


_LOSS_KEYS = (
    ("train_loss", "training loss (mean over the run)"),
    ("last_train_loss", "training loss (last logged)"),
    ("eval_loss", "validation loss (final evaluation)"),
    ("global_step", "optimizer steps"),
    ("epoch", "epochs"),
    ("train_runtime", "training time (s)"),
)


def _training_section(run: TrainingRun) -> str:
    metrics = losses(run)
    text = "## Training\n\n"
    rows = [(label, _number(metrics[key])) for key, label in _LOSS_KEYS if metrics.get(key) is not None]
    if rows:
        text += _table(rows)
        if metrics.get("source"):
            text += (
                f"\nFrom `{metrics['source']}` (the last losses logged; the run wrote no {TRAIN_RUN_NAME}).\n"
            )
    else:
        text += "No losses were recorded with this run.\n"
    settings = yaml.safe_dump(run.config, sort_keys=False, allow_unicode=True, width=1000)
    text += (
        f"\nSettings ({TRAIN_CONFIG_NAME}; medAlpaca's flag names, "
        "`meadow train --config` reads this as YAML):\n\n"
        f"```yaml\n{settings}```\n"
    )
    return text


def _eval_section(evals: list[EvalResult], weights_sha256: str | None) -> str:
    text = "## Evaluation\n\n"
    if not evals:
        return text + (
            "No evaluation results were pushed with this model (`meadow eval`, then "
            "`meadow push --model OUTPUT_DIR --eval results.json`).\n"
        )
    from meadow.eval.results import markdown_table

    text += (
        "Multiple-choice accuracy in % (95% Wilson interval), n questions, by `meadow eval` "
        "(model, scoring mode, shots, prompt):\n\n"
    )
    text += markdown_table([e.results for e in evals], "acc") + "\n"
    for e in evals:
        model = e.results.get("model") or {}
        same = weights_sha256 is not None and model.get("sha256") == weights_sha256
        whose = "these weights" if same else "another model, for comparison"
        text += f"- `{e.repo_path}`: `{model.get('identity', '?')}` ({whose})\n"
    return text


def _usage_section(run: TrainingRun, repo_id: str) -> str:
    from meadow.train.prompt import load_template

    template_name = str(run.config.get("prompt_template", "medalpaca"))
    question = "What are the common symptoms of iron deficiency anemia?"
    if run.kind == "adapter":
        load = (
            "from peft import AutoPeftModelForCausalLM\n"
            "from transformers import AutoTokenizer\n\n"
            f'model = AutoPeftModelForCausalLM.from_pretrained("{repo_id}")  # base model + this adapter\n'
            f'tokenizer = AutoTokenizer.from_pretrained("{repo_id}")\n'
        )
    else:
        load = (
            "from transformers import AutoModelForCausalLM, AutoTokenizer\n\n"
            f'model = AutoModelForCausalLM.from_pretrained("{repo_id}")\n'
            f'tokenizer = AutoTokenizer.from_pretrained("{repo_id}")\n'
        )
    try:
        t = load_template(template_name)
    except MeadowError:
        t = None
    text = "## How to use\n\n"
    if t is not None:
        parts = "".join(
            f"    {json.dumps(p)}\n" for p in (t.primer, t.instruction, question, t.input, t.output)
        )
        text += (
            f"The model was trained on prompts in the `{template_name}` template ({TEMPLATE_NAME}); "
            "prompt it the same way:\n\n"
            f"```python\n{load}\nprompt = (\n{parts})\n"
            'inputs = tokenizer(prompt, return_tensors="pt")\n'
            "output = model.generate(**inputs, max_new_tokens=128, do_sample=False)\n"
            'print(tokenizer.decode(output[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True))\n'
            "```\n"
        )
    else:
        text += (
            f"The model was trained on prompts in the template `{template_name}` (a file not found when "
            f"pushing):\n\n```python\n{load}```\n"
        )
    prompt_flag = "" if template_name == "medalpaca" else " --prompt chat  # or the training template"
    text += (
        "\nWith meadow, one question (or, without one, an interactive chat):\n\n"
        f'```bash\nmeadow generate "{question}" --model {repo_id} --allow-download{prompt_flag}\n```\n'
    )
    return text


def _files_section(files: list[tuple[str, int]]) -> str:
    from meadow.io import human_size

    rows = [(f"`{path}`", human_size(size)) for path, size in files]
    return "## Files\n\n" + _table(rows, header=("file", "size"))


def _citation_section() -> str:
    from meadow.sources._common import MEDALPACA_CITATION

    return (
        "## Citation\n\n"
        "The training recipe and the Medical Meadow data are medAlpaca's; cite it, and the sources "
        "of the data you rely on (listed in the dataset's card):\n\n"
        f"```bibtex\n{MEDALPACA_CITATION}\n```\n"
    )


def _table(rows: list[tuple[str, str]], header: tuple[str, str] = ("", "")) -> str:
    lines = [f"| {header[0]} | {header[1]} |", "|---|---|"]
    lines += [f"| {a} | {b} |" for a, b in rows]
    return "\n".join(lines) + "\n"


def _number(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int) or float(value).is_integer() and abs(value) >= 1:
        return f"{int(value):,}"
    return f"{value:.4g}"


# --------------------------------------------------------------------------- staging


@dataclass
class StagedModel:
    """A staged model repository folder and what is in it."""

    folder: Path
    run: TrainingRun
    base: BaseModelInfo
    files: list[tuple[str, int]] = field(default_factory=list)  # (path in repo, bytes)


def stage_model(
    run: TrainingRun,
    folder: Path,
    *,
    repo_id: str,
    base: BaseModelInfo | None = None,
    dataset_repo_id: str | None = None,
    eval_paths: list[Path] | None = None,
    link: bool = False,
) -> StagedModel:
    """Write the repository folder for ``run`` to ``folder`` (atomically; an existing folder is
    replaced only if it is empty or an earlier stage). ``link``: hard-link the weights where the
    file system allows (a temporary stage), instead of copying them."""
    from meadow.io import atomic_dir
    from meadow.models import weights_sha256
    from meadow.train.prompt import load_template

    base = base or base_model(run)
    if run.kind == "adapter" and not base.hub_id:
        raise PushError(
            f"{run.output_dir}: the adapter's base model ({base.trained_on}) has no known Hub repository, "
            "so nobody could load the adapter: name it with --base-model ORG/NAME, or push the merged "
            "weights (--merged). Nothing was pushed."
        )
    evals = load_evals(eval_paths)
    if folder.exists() and any(folder.iterdir()) and not (folder / TRAIN_CONFIG_NAME).is_file():
        raise PushError(f"{folder}: not empty and not an earlier stage: choose a new or empty folder")
    with atomic_dir(folder) as tmp:
        for name in run.files:
            source, target = run.weights_dir / name, tmp / name
            if name == ADAPTER_CONFIG:
                adapter = _read_json(source, "the adapter's settings")
                adapter["base_model_name_or_path"] = base.hub_id
                target.write_text(json.dumps(adapter, indent=2, sort_keys=True) + "\n", encoding="utf-8")
            elif link:
                _link_or_copy(source, target)
            else:
                shutil.copyfile(source, target)
        shutil.copyfile(run.output_dir / TRAIN_CONFIG_NAME, tmp / TRAIN_CONFIG_NAME)
        if run.run is not None:
            shutil.copyfile(run.output_dir / TRAIN_RUN_NAME, tmp / TRAIN_RUN_NAME)
        try:
            template = load_template(str(run.config.get("prompt_template", "medalpaca")))
            (tmp / TEMPLATE_NAME).write_text(template.model_dump_json(indent=4) + "\n", encoding="utf-8")
        except MeadowError as err:
            log.warning("the prompt template is not pushed: %s", err)
        for e in evals:
            (tmp / e.repo_path).parent.mkdir(exist_ok=True)
            shutil.copyfile(e.path, tmp / e.repo_path)
        card = model_card(
            run,
            base,
            repo_id=repo_id,
            dataset_repo_id=dataset_repo_id,
            evals=evals,
            weights_sha256=weights_sha256(run.weights_dir),
            files=_listing(tmp),  # all but the card itself
        )
        (tmp / CARD_NAME).write_text(card, encoding="utf-8")
        staged = StagedModel(folder=folder, run=run, base=base, files=_listing(tmp))
        bad = [path for path, _ in staged.files if _NEVER.search(path)]
        if bad:  # cannot happen with the lists above; a guard against a future change of them
            raise PushError(f"refusing to push {', '.join(bad)}: checkpoints and pickles are never uploaded")
    return staged


def _listing(folder: Path) -> list[tuple[str, int]]:
    return sorted(
        (p.relative_to(folder).as_posix(), p.stat().st_size) for p in folder.rglob("*") if p.is_file()
    )


def _link_or_copy(source: Path, target: Path) -> None:
    """A temporary stage points at the weights (a hard link, else a symbolic one): a multi-GB
    model is never copied just to be uploaded."""
    try:
        os.link(source, target)
    except OSError:
        try:
            target.symlink_to(source.resolve())
        except OSError:
            shutil.copyfile(source, target)


# --------------------------------------------------------------------------- the push


def push_model(
    output_dir: str | Path,
    *,
    repo_id: str,
    merged: bool = False,
    dataset_repo_id: str | None = None,
    eval_paths: list[Path] | None = None,
    base_model_id: str | None = None,
    license: str | None = None,  # noqa: A002 - the card's field
    private: bool = False,
    revision: str | None = None,
    dry_run: bool = False,
    stage_dir: str | Path | None = None,
    commit_message: str | None = None,
) -> PushResult:
    """Check and stage a training run's output, then (unless ``dry_run`` or ``stage_dir``) upload
    it as a model repository in one commit."""
    check_repo_id(repo_id)
    if dataset_repo_id is not None and not _HUB_ID.match(dataset_repo_id):
        raise PushError(f"--dataset-repo-id {dataset_repo_id!r}: expected the dataset's Hub id, ORG/NAME")
    if base_model_id is not None and not _HUB_ID.match(base_model_id):
        raise PushError(f"--base-model {base_model_id!r}: expected the base model's Hub id, ORG/NAME")
    run = find_run(output_dir, merged=merged)
    base = base_model(run, override=base_model_id, license_override=license)
    options = {"repo_id": repo_id, "base": base, "dataset_repo_id": dataset_repo_id, "eval_paths": eval_paths}

    def commit(staged: StagedModel) -> tuple[str, str]:
        what = {"adapter": "LoRA adapter", "merged": "merged weights", "full": "full fine-tune"}[run.kind]
        return (
            commit_message or f"meadow {__version__}: {what} of {base.hub_id or base.trained_on}",
            f"Pushed by `meadow push --model` from {run.output_dir.name}; settings in {TRAIN_CONFIG_NAME}.",
        )

    return publish(
        lambda folder, temporary: stage_model(run, folder, link=temporary, **options),
        commit,
        repo_id,
        repo_type="model",
        private=private,
        revision=revision,
        dry_run=dry_run,
        stage_dir=stage_dir,
    )
