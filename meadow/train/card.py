"""The short model card (README.md) that `meadow train` writes into its output folder.

peft's ``save_pretrained`` writes a template card there ("[More Information Needed]", the local
cache path as base model). This one says what the folder holds: the base model's Hub id, the data,
the settings and losses, and that it is not for clinical use. ``meadow push --model`` writes the
full card for the Hub (``meadow/hub/model_card.py``, which takes the caveat and tables from here).
"""

from __future__ import annotations

from typing import Any

import yaml

from meadow.schemas.outputs import TRAIN_CONFIG_NAME, TRAIN_RUN_NAME

CAVEAT = """> **Not for clinical use.** This model is a research artifact for studying medical language
> models. It has not been validated for diagnosis, treatment, triage or any other medical decision.
> Its answers can be wrong, out of date or invented while sounding confident, and a small
> benchmark evaluation says little about how it behaves on real patients' questions. Do not use it to
> give medical advice or anywhere its output could reach a patient or a clinician's decision.
> As with medAlpaca's models, its use is for research only."""

LOSS_KEYS = (
    ("train_loss", "training loss (mean over the run)"),
    ("last_train_loss", "training loss (last logged)"),
    ("eval_loss", "validation loss (final evaluation)"),
    ("global_step", "optimizer steps"),
    ("epoch", "epochs"),
    ("train_runtime", "training time (s)"),
)
"""The metrics a card shows, in order, with their labels."""

SETTINGS = (
    "learning_rate",
    "warmup_steps",
    "lr_scheduler_type",
    "global_batch_size",
    "per_device_batch_size",
    "num_epochs",
    "max_steps",
    "model_max_length",
    "train_on_inputs",
    "prompt_template",
    "lora_r",
    "lora_alpha",
    "lora_dropout",
    "lora_target_modules",
    "train_in_8bit",
    "load_in_4bit",
    "seed",
)


def run_card(
    settings: dict[str, Any],
    *,
    base_hub_id: str | None,
    base_identity: str,
    data: dict[str, Any],
    metrics: dict[str, Any],
) -> str:
    """README.md of a training output folder (an adapter, or full weights without LoRA)."""
    adapter = bool(settings.get("use_lora", True))
    meta: dict[str, Any] = {}
    if base_hub_id:
        meta["base_model"] = base_hub_id
    meta["library_name"] = "peft" if adapter else "transformers"
    meta["tags"] = ["medical", "medalpaca", "meadow", *(["lora"] if adapter else [])]
    meta["pipeline_tag"] = "text-generation"
    front = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, width=1000)
    base = f"[{base_hub_id}](https://huggingface.co/{base_hub_id})" if base_hub_id else f"`{base_identity}`"
    build = data.get("build")
    what = "A LoRA adapter for" if adapter else "A full fine-tune of"
    on = f"the meadow build `{build['recipe']}`" if build else f"`{data['path']}`"
    rows = [
        ("base model", base),
        ("loaded for training", f"`{base_identity}`"),
        ("data", f"`{data['path']}` ({data['records']:,} records, before the validation split)"),
        ("data file sha256", f"`{data['sha256']}`"),
    ]
    if build:
        rows.append(("build's `manifest.json` sha256", f"`{build['manifest_sha256']}`"))
    rows += [(label, number(metrics[key])) for key, label in LOSS_KEYS if metrics.get(key) is not None]
    rows += [(f"`{key}`", f"`{settings[key]}`") for key in SETTINGS if key in settings]
    return (
        f"---\n{front}---\n\n# {base_hub_id or base_identity}, fine-tuned by meadow\n\n"
        f"{what} {base}, trained by `meadow train` (medAlpaca's training recipe) on {on}.\n\n"
        f"{CAVEAT}\n\n"
        + table(rows)
        + f"\nAll settings are in `{TRAIN_CONFIG_NAME}`, the run's provenance in `{TRAIN_RUN_NAME}`. "
        "`meadow push --model OUTPUT_DIR` writes the full card for the Hub (evaluation results, how to "
        "load and prompt the model, the citation).\n"
    )


def table(rows: list[tuple[str, str]], header: tuple[str, str] = ("", "")) -> str:
    """A two-column markdown table."""
    lines = [f"| {header[0]} | {header[1]} |", "|---|---|"]
    lines += [f"| {a} | {b} |" for a, b in rows]
    return "\n".join(lines) + "\n"


def number(value: Any) -> str:
    """A metric as a card shows it: whole numbers with thousands commas, else 4 significant digits."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int) or float(value).is_integer() and abs(value) >= 1:
        return f"{int(value):,}"
    return f"{value:.4g}"
