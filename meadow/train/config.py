"""`meadow train` settings: medAlpaca's ``train.py`` flags, their names, meanings and defaults.

One pydantic model, ``TrainConfig``, is the single truth for the command line
(``--flag value``, fire's ``--flag=value``, booleans as ``True``/``False``) and for a YAML
config file (the same keys). Unknown keys are errors, with the key (and the file) named.

Checks that need no model (``fp16`` with ``bf16``, ``train_in_8bit`` without LoRA, 8/4-bit
without bitsandbytes, the data file's fields) run here, before anything heavy is loaded.
"""

from __future__ import annotations

import ast
import difflib
import importlib.util
import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from meadow.errors import MeadowError
from meadow.schemas.explain import yaml_error


class TrainConfig(BaseModel):
    """medAlpaca's ``train.py`` arguments (same defaults), plus meadow's additions at the end."""

    model_config = ConfigDict(extra="forbid", validate_assignment=False)

    # --- medAlpaca's flags, medAlpaca's defaults --------------------------------------------
    model: str | None = Field(None, description="Hub id, local directory or .gguf; default: embedded SmolLM2")
    val_set_size: float = Field(0.1, ge=0, description="Fraction (<1) or number (>=1) of validation records")
    prompt_template: str = Field("medalpaca", description="Bundled template name or a JSON file path")
    model_max_length: int = Field(
        256, gt=0, description="Tokens per example; longer ones are cut and counted"
    )
    train_on_inputs: bool = Field(True, description="False: no loss on the prompt (completion-only)")
    data_path: str = Field("medical_meadow_small.json", description="medAlpaca-format JSON, or a build dir")
    train_in_8bit: bool = Field(True, description="8-bit base weights (bitsandbytes; needs use_lora)")
    use_lora: bool = Field(True, description="Train a LoRA adapter, not every weight")
    lora_r: int = Field(8, gt=0, description="LoRA rank")
    lora_alpha: int = Field(16, gt=0, description="LoRA scaling (alpha)")
    lora_dropout: float = Field(0.1, ge=0, lt=1, description="Dropout on the LoRA layers")
    lora_target_modules: list[str] = Field(
        default_factory=lambda: ["q_proj", "v_proj"],
        min_length=1,
        description="Modules that get an adapter: q_proj,v_proj or [q_proj,v_proj]",
    )
    per_device_batch_size: int = Field(2, gt=0, description="Examples per process per forward pass")
    num_epochs: float = Field(3, gt=0, description="Passes over the training split")
    learning_rate: float = Field(2e-5, gt=0, description="Peak learning rate")
    global_batch_size: int = Field(
        128, gt=0, description="Examples per optimizer step (gradient accumulation makes up the rest)"
    )
    output_dir: str = Field("./output", description="Adapter or model, checkpoints and run files")
    save_total_limit: int = Field(3, gt=0, description="Checkpoints kept")
    eval_steps: int = Field(200, gt=0, description="Steps between evaluations and checkpoints")
    wandb_run_name: str = Field("test", description="Weights & Biases run name")
    use_wandb: bool = Field(False, description="Log to Weights & Biases (needs wandb)")
    wandb_project: str = Field("medalpaca", description="Weights & Biases project")
    optim: str = Field("adamw_torch", description="Optimizer (a transformers name)")
    lr_scheduler_type: str = Field("cosine", description="Learning-rate schedule (a transformers name)")
    fp16: bool = Field(True, description="float16 mixed precision (a GPU; on a CPU: float32)")
    bf16: bool = Field(False, description="bfloat16 mixed precision")
    tf32: bool | None = Field(None, description="TF32 matmuls on Ampere+ GPUs (unset: as transformers)")
    gradient_checkpointing: bool = Field(False, description="Recompute activations to save memory")
    warmup_steps: int = Field(100, ge=0, description="Learning-rate warmup steps")

    # --- meadow's additions --------------------------------------------------------------------
    load_in_4bit: bool = Field(False, description="QLoRA: 4-bit NF4 base weights (needs use_lora)")
    completion_only_loss: bool | None = Field(None, description="True: same as train_on_inputs False")
    packing: bool = Field(
        False,
        description="Padding-free batches: a batch's examples in one row, positions restarting per example",
    )
    max_steps: int = Field(-1, description="Stop after this many optimizer steps (-1: num_epochs decides)")
    resume_from_checkpoint: str | None = Field(
        None, description="A checkpoint directory, or True: the latest in output_dir"
    )
    merge: bool = Field(False, description="Also save base + adapter merged into output_dir/merged")
    logging_steps: int = Field(10, gt=0, description="Steps between loss logs")
    seed: int = Field(42, description="Seed of the validation split, shuffling and initialisation")

    @field_validator("lora_target_modules", mode="before")
    @classmethod
    def _modules(cls, value: Any) -> Any:
        """fire passes ``[q_proj,v_proj]`` or ``('q_proj','v_proj')``; also accept ``q_proj,v_proj``."""
        if isinstance(value, str):
            text = value.strip()
            try:
                parsed = ast.literal_eval(text)
            except (ValueError, SyntaxError):
                parsed = [part.strip(" '\"") for part in text.strip("[]()").split(",")]
            value = [parsed] if isinstance(parsed, str) else parsed
        if isinstance(value, (list, tuple)):
            return [str(v).strip() for v in value if str(v).strip()]
        return value

    @field_validator("resume_from_checkpoint", mode="before")
    @classmethod
    def _resume(cls, value: Any) -> Any:
        if value is True or (isinstance(value, str) and value.lower() == "true"):
            return "true"
        if value is False or (isinstance(value, str) and value.lower() in ("false", "none", "")):
            return None
        return value

    @model_validator(mode="after")
    def _rules(self) -> TrainConfig:
        if self.fp16 and self.bf16:
            raise ValueError("at most one of fp16 and bf16 can be True, not both")
        if self.train_in_8bit and self.load_in_4bit:
            raise ValueError("train_in_8bit and load_in_4bit are exclusive: choose one")
        if self.train_in_8bit and not self.use_lora:
            raise ValueError(
                "8-bit training without LoRA is not supported (use_lora False): medAlpaca's rule"
            )
        if self.load_in_4bit and not self.use_lora:
            raise ValueError("4-bit (QLoRA) training needs use_lora True")
        if self.merge and not self.use_lora:
            raise ValueError("merge applies to a LoRA adapter: it needs use_lora True")
        if self.completion_only_loss is not None:
            if (
                self.completion_only_loss
                and "train_on_inputs" in self.model_fields_set
                and self.train_on_inputs
            ):
                raise ValueError("completion_only_loss True contradicts train_on_inputs True")
            if "train_on_inputs" not in self.model_fields_set:
                self.train_on_inputs = not self.completion_only_loss
        if self.val_set_size >= 1 and self.val_set_size != int(self.val_set_size):
            raise ValueError("val_set_size: a fraction below 1, or a whole number of records")
        return self

    @property
    def quantized(self) -> bool:
        return self.train_in_8bit or self.load_in_4bit

    def gradient_accumulation_steps(self, world_size: int | None = None) -> int:
        """global batch = per-device batch x accumulation x world size, as medAlpaca computes it."""
        world = world_size or int(os.environ.get("WORLD_SIZE", "1"))
        per_step = self.per_device_batch_size * world
        if self.global_batch_size % per_step:
            raise MeadowError(
                f"global_batch_size {self.global_batch_size} is not a multiple of per_device_batch_size "
                f"{self.per_device_batch_size} x {world} process(es)"
            )
        return self.global_batch_size // per_step


def _errors(err: ValidationError) -> str:
    parts = []
    for e in err.errors():
        loc = ".".join(map(str, e["loc"]))
        msg = e["msg"].removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts)


def _unknown(names: list[str], prefix: str, what: str) -> list[str]:
    """Why each of ``names`` is no TrainConfig field, with the closest one (``--learning_rate``)."""
    problems = []
    for name in names:
        if name not in TrainConfig.model_fields:
            close = difflib.get_close_matches(name, list(TrainConfig.model_fields), n=1)
            hint = f"; did you mean {prefix}{close[0]}?" if close else " (meadow train --help lists them)"
            problems.append(f"unknown {what} {prefix}{name}{hint}")
    return problems


def load_config(path: str | os.PathLike[str] | None = None, **overrides: Any) -> TrainConfig:
    """A TrainConfig from a YAML file (optional), with ``overrides`` (the command line) on top."""
    values: dict[str, Any] = {}
    origin = "command line"
    if path is not None:
        path = Path(path)
        origin = str(path)
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise MeadowError(f"{path}: no such config file") from None
        except yaml.YAMLError as err:
            raise MeadowError(yaml_error(path, err)) from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise MeadowError(f"{path}: a train config must be a mapping of flag names to values")
        problems = _unknown([str(key) for key in loaded], "", "key")
        if problems:
            raise MeadowError(f"{path}: " + "; ".join(problems))
        values.update(loaded)
        if overrides:
            origin = f"{path} and the command line"
    problems = _unknown(list(overrides), "--", "flag")
    if problems:
        raise MeadowError("; ".join(problems))
    values.update(overrides)
    try:
        config = TrainConfig.model_validate(values)
    except ValidationError as err:
        raise MeadowError(f"{origin}: invalid train config: {_errors(err)}") from None
    check_environment(config)
    return config


def check_environment(config: TrainConfig) -> None:
    """Errors that depend on what is installed, raised before any model is loaded."""
    if config.quantized and importlib.util.find_spec("bitsandbytes") is None:
        which = "train_in_8bit" if config.train_in_8bit else "load_in_4bit"
        raise MeadowError(
            f"{which} needs the 'bitsandbytes' package: pip install bitsandbytes "
            "(or pass --train_in_8bit False --load_in_4bit False)"
        )
    if config.use_lora and importlib.util.find_spec("peft") is None:
        raise MeadowError("use_lora needs the 'peft' package: pip install peft")
    if config.use_wandb and importlib.util.find_spec("wandb") is None:
        raise MeadowError("use_wandb needs the 'wandb' package: pip install wandb")


def parse_flags(args: list[str]) -> tuple[dict[str, Any], str | None]:
    """medAlpaca's (fire's) command line: ``--flag value``, ``--flag=value``, a bare ``--flag`` is
    True. Returns the flags (values as strings, for pydantic to convert) and ``--config``'s value."""
    flags: dict[str, Any] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--") or arg == "--":
            raise MeadowError(f"unexpected argument {arg!r}: flags are --name value or --name=value")
        name, eq, value = arg[2:].partition("=")
        name = name.replace("-", "_")
        if not eq:
            if i + 1 < len(args) and not args[i + 1].startswith("--"):
                value = args[i + 1]
                i += 1
            else:
                value = "True"
        if name in flags:
            raise MeadowError(f"--{name} is given twice")
        flags[name] = value
        i += 1
    config = flags.pop("config", None)
    return flags, config
