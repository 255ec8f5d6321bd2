"""The model card (README.md) of `meadow push --model`, and the evaluation results pushed with it.

YAML metadata the Hub reads (license, base_model, library_name, tags, datasets, pipeline_tag),
then: what the model is, that it is not for clinical use, the base model, the data build, the
settings and losses, the ``--eval`` tables, how to load and prompt it, the files, the citation.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from meadow import __version__
from meadow.errors import MeadowError
from meadow.hub.training_run import BaseModelInfo, TrainingRun
from meadow.io import human_size
from meadow.schemas.outputs import TEMPLATE_NAME, TRAIN_CONFIG_NAME, TRAIN_RUN_NAME
from meadow.train.card import CAVEAT, LOSS_KEYS, number, table

log = logging.getLogger(__name__)


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
    text = "## Base model\n\n" + table(rows)
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
    text += table(rows)
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


def _training_section(run: TrainingRun) -> str:
    metrics = losses(run)
    text = "## Training\n\n"
    rows = [(label, number(metrics[key])) for key, label in LOSS_KEYS if metrics.get(key) is not None]
    if rows:
        text += table(rows)
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
    rows = [(f"`{path}`", human_size(size)) for path, size in files]
    return "## Files\n\n" + table(rows, header=("file", "size"))


def _citation_section() -> str:
    from meadow.sources._common import MEDALPACA_CITATION

    return (
        "## Citation\n\n"
        "The training recipe and the Medical Meadow data are medAlpaca's; cite it, and the sources "
        "of the data you rely on (listed in the dataset's card):\n\n"
        f"```bibtex\n{MEDALPACA_CITATION}\n```\n"
    )
