"""`meadow train`: medAlpaca's fine-tune on transformers' Trainer and peft, on today's libraries.

What differs from medAlpaca's ``train.py`` (which no longer runs on transformers 5 / current peft):
8-bit and 4-bit loading go through ``BitsAndBytesConfig`` and ``prepare_model_for_kbit_training``;
the dtype is one the device supports (fp16 mixed precision only on a GPU; medAlpaca loaded the
model in fp16 whenever LoRA was on, even on CPU); the prompt and the answer are tokenized apart
so completion-only masking is exact; truncation is counted. Multi-GPU and multi-node runs go
through ``accelerate launch``: WORLD_SIZE enters the gradient accumulation as in medAlpaca.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from meadow.errors import MeadowError
from meadow.models import ResolvedModel, hub_repo_id, model_libraries, resolve_model
from meadow.schemas.outputs import MERGED_DIR, TRAIN_CARD_NAME, TRAIN_CONFIG_NAME, TRAIN_RUN_NAME
from meadow.train.card import run_card
from meadow.train.config import TrainConfig, check_environment
from meadow.train.data import IGNORE, Examples, load_records, split, tokenize
from meadow.train.prompt import PromptTemplate, load_template
from meadow.train.schedule import Schedule, plan_schedule

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    output_dir: Path
    metrics: dict[str, float]
    data: dict[str, dict[str, int]]
    log_history: list[dict[str, Any]] = field(default_factory=list)
    global_step: int = 0
    merged_dir: Path | None = None
    main_process: bool = True
    """False in the other processes of a distributed run (only the main one writes files)."""


@dataclass(frozen=True)
class Precision:
    """How the weights are loaded and which mixed precision the Trainer runs."""

    load_dtype: Any
    fp16: bool
    bf16: bool
    tf32: bool | None


def pick_precision(config: TrainConfig, *, cuda: bool, bf16_supported: bool) -> Precision:
    """A precision the device supports. On CPU, fp16 (medAlpaca's default) becomes float32."""
    import torch

    fp16, bf16, tf32 = config.fp16, config.bf16, config.tf32
    if not cuda:
        if fp16:
            log.info("fp16 mixed precision needs a GPU: training in float32 on the CPU")
            fp16 = False
        if tf32:
            log.info("tf32 is a GPU setting: ignored on the CPU")
        tf32 = None
    elif bf16 and not bf16_supported:
        raise MeadowError("bf16 is not supported by this GPU: use --fp16 True --bf16 False")
    # Frozen base weights (LoRA) can be held in the half-precision compute dtype; fully trained
    # weights stay float32 so that mixed precision has float32 master weights.
    half = torch.bfloat16 if bf16 else torch.float16 if fp16 else None
    load_dtype = half if (config.use_lora and half is not None) else torch.float32
    return Precision(load_dtype=load_dtype, fp16=fp16, bf16=bf16, tf32=tf32)


def resume_checkpoint(config: TrainConfig) -> str | None:
    """The checkpoint to resume from: a path, or (``True``) the latest in output_dir."""
    if config.resume_from_checkpoint is None:
        return None
    if config.resume_from_checkpoint == "true":
        from transformers.trainer_utils import get_last_checkpoint

        last = get_last_checkpoint(config.output_dir) if Path(config.output_dir).is_dir() else None
        if last is None:
            raise MeadowError(f"resume_from_checkpoint: no checkpoint-* directory in {config.output_dir}")
        return last
    path = Path(config.resume_from_checkpoint)
    if not (path / "trainer_state.json").is_file():
        raise MeadowError(
            f"resume_from_checkpoint: {path} is not a Trainer checkpoint (no trainer_state.json)"
        )
    return str(path)


def load_model(config: TrainConfig, resolved: ResolvedModel, precision: Precision, *, cuda: bool) -> Any:
    """The model to train: base (optionally 8/4-bit), with LoRA adapters when use_lora."""
    import torch

    kwargs: dict[str, Any] = {"dtype": precision.load_dtype}
    if config.packing:
        from meadow.train import attention

        kwargs["attn_implementation"] = attention.register()
    if cuda:
        kwargs["device_map"] = {"": int(os.environ.get("LOCAL_RANK", "0"))}
    if config.quantized:
        from transformers import BitsAndBytesConfig

        if config.train_in_8bit:
            kwargs["quantization_config"] = BitsAndBytesConfig(load_in_8bit=True)
        else:
            compute = precision.load_dtype
            kwargs["quantization_config"] = BitsAndBytesConfig(
                load_in_4bit=True,
                bnb_4bit_quant_type="nf4",
                bnb_4bit_use_double_quant=True,
                bnb_4bit_compute_dtype=compute,
            )
    if config.train_in_8bit and precision.load_dtype != torch.float16:
        # bitsandbytes warns on every 8-bit matmul that it casts the inputs to float16
        log.info("8-bit matmuls run in float16 (bitsandbytes casts the %s inputs)", precision.load_dtype)
        logging.getLogger("bitsandbytes.autograd._functions").setLevel(logging.ERROR)
    model = resolved.load_model(**kwargs)
    model.config.use_cache = False
    if config.quantized:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(
            model,
            use_gradient_checkpointing=config.gradient_checkpointing,
            gradient_checkpointing_kwargs={"use_reentrant": False},
        )
    if config.use_lora:
        from peft import LoraConfig, get_peft_model

        lora = LoraConfig(
            r=config.lora_r,
            lora_alpha=config.lora_alpha,
            target_modules=config.lora_target_modules,
            lora_dropout=config.lora_dropout,
            bias="none",
            task_type="CAUSAL_LM",
        )
        try:
            model = get_peft_model(model, lora)
        except ValueError as err:
            names = sorted(
                {n.rsplit(".", 1)[-1] for n, m in model.named_modules() if type(m).__name__ == "Linear"}
            )
            raise MeadowError(
                f"lora_target_modules {config.lora_target_modules}: {err} (linear layers of "
                f"{resolved.name}: {', '.join(names)})"
            ) from None
        trainable, total = model.get_nb_trainable_parameters()
        log.info(
            "LoRA: %s trainable parameters of %s (%.2f%%)",
            f"{trainable:,}",
            f"{total:,}",
            100 * trainable / total,
        )
    return model


def training_arguments(
    config: TrainConfig,
    precision: Precision,
    *,
    has_eval: bool,
    accumulation: int,
    world_size: int,
    cuda: bool,
    schedule: Schedule | None = None,
) -> Any:
    from transformers import TrainingArguments

    if config.use_wandb and config.wandb_project:
        os.environ.setdefault("WANDB_PROJECT", config.wandb_project)
    return TrainingArguments(
        output_dir=config.output_dir,
        per_device_train_batch_size=config.per_device_batch_size,
        per_device_eval_batch_size=config.per_device_batch_size,
        gradient_accumulation_steps=accumulation,
        # gradient_checkpointing, renamed in transformers 5 (k-bit: prepare_model_for_kbit_training)
        activation_checkpointing=config.gradient_checkpointing and not config.quantized,
        activation_checkpointing_kwargs={"use_reentrant": False} if config.gradient_checkpointing else None,
        dataloader_pin_memory=cuda,
        # on a CPU, DDP (gloo) across processes happens only with use_cpu
        use_cpu=not cuda,
        ddp_backend="gloo" if not cuda and world_size > 1 else None,
        warmup_steps=config.warmup_steps,
        num_train_epochs=config.num_epochs,
        max_steps=config.max_steps,
        learning_rate=config.learning_rate,
        fp16=precision.fp16,
        bf16=precision.bf16,
        tf32=precision.tf32,
        logging_steps=schedule.logging_steps if schedule else config.logging_steps,
        optim=config.optim,
        lr_scheduler_type=config.lr_scheduler_type,
        eval_strategy="steps" if has_eval else "no",
        eval_steps=config.eval_steps if has_eval else None,
        save_strategy="steps",
        save_steps=config.eval_steps,
        save_total_limit=config.save_total_limit,
        load_best_model_at_end=has_eval,
        ddp_find_unused_parameters=False if world_size > 1 else None,
        report_to=["wandb"] if config.use_wandb else "none",
        run_name=config.wandb_run_name if config.use_wandb else None,
        seed=config.seed,
        remove_unused_columns=False,
        # no compute_metrics: evaluation needs the loss only, not every batch's logits kept
        prediction_loss_only=True,
    )


def trainer_class() -> type:
    """transformers' Trainer, with the logits computed only where a loss is taken.

    The default causal-LM loss runs the vocabulary projection (49,152 x 576 for SmolLM2) over
    every position and then ignores the ones labelled -100: the prompt under completion-only
    loss, padding, the first token of each packed example. Here the model is asked for the
    logits of the positions whose next token has a label (``logits_to_keep`` with indices, which
    every transformers causal LM accepts), and the cross-entropy is taken over those alone:
    the same loss and gradients, less work and a smaller logits tensor. Models whose forward
    has no ``logits_to_keep`` take the default path.
    """
    import inspect

    import torch
    from peft import PeftModel
    from transformers import Trainer

    class MeadowTrainer(Trainer):
        _logits_to_keep: bool | None = None

        def _keeps_logits(self, model: Any) -> bool:
            """Whether the model's forward takes ``logits_to_keep`` (looked up once, not every step)."""
            if self._logits_to_keep is None:
                base = self.accelerator.unwrap_model(model)
                if isinstance(base, PeftModel):
                    base = base.get_base_model()
                self._logits_to_keep = "logits_to_keep" in inspect.signature(base.forward).parameters
            return self._logits_to_keep

        def compute_loss(
            self,
            model: Any,
            inputs: dict[str, Any],
            return_outputs: bool = False,
            num_items_in_batch: Any = None,
        ) -> Any:
            if "labels" not in inputs or not self._keeps_logits(model):
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            inputs = dict(inputs)
            targets = inputs.pop("labels")[:, 1:]
            positions = targets.ne(IGNORE).any(dim=0).nonzero().squeeze(1)
            outputs = model(**inputs, logits_to_keep=positions)
            logits = outputs.logits
            loss = torch.nn.functional.cross_entropy(
                logits.float().reshape(-1, logits.shape[-1]),
                targets[:, positions].reshape(-1),
                ignore_index=IGNORE,
                reduction="sum",
            )
            # as transformers' ForCausalLMLoss: a sum over the accumulated batch's label count
            # (Trainer then takes it as scaled for accumulation), else a mean
            count = num_items_in_batch if num_items_in_batch is not None else targets.ne(IGNORE).sum()
            loss = loss / count
            if self.args.average_tokens_across_devices and num_items_in_batch is not None:
                loss = loss * self.accelerator.num_processes
            return (loss, outputs) if return_outputs else loss

    return MeadowTrainer


def collator(config: TrainConfig, tokenizer: Any) -> Any:
    """Padded batches (medAlpaca), or with ``packing`` each batch's examples concatenated into one
    row without padding: position ids restart at 0 for every example, from which transformers
    builds a block-diagonal causal mask, and each example's first label is -100, so neither
    attention nor loss crosses from one example into the next."""
    from transformers import DataCollatorForSeq2Seq, DataCollatorWithFlattening

    if config.packing:
        return DataCollatorWithFlattening(return_position_ids=True, separator_id=-100)
    return DataCollatorForSeq2Seq(tokenizer, pad_to_multiple_of=8, padding=True)


def prepare_data(
    config: TrainConfig, records: list[dict[str, str]], template: PromptTemplate, tokenizer: Any
) -> tuple[Examples, Examples | None]:
    train_records, val_records = split(records, config.val_set_size, config.seed)
    options = {"model_max_length": config.model_max_length, "train_on_inputs": config.train_on_inputs}
    train_set = tokenize(train_records, tokenizer, template, **options)
    val_set = tokenize(val_records, tokenizer, template, **options) if val_records else None
    log.info(
        "data: %d training examples, %d validation (%s); %d truncated to %d tokens",
        len(train_set),
        len(val_set) if val_set else 0,
        config.data_path,
        train_set.stats["truncated"] + (val_set.stats["truncated"] if val_set else 0),
        config.model_max_length,
    )
    return train_set, val_set


def train(config: TrainConfig) -> TrainResult:
    """Fine-tune ``config.model`` on ``config.data_path``; write adapter (or model) to output_dir."""
    check_environment(config)
    # bitsandbytes is imported only for 8-bit or 4-bit weights; known library noise is filtered
    with model_libraries(quantized=config.quantized):
        return _train(config)


def _train(config: TrainConfig) -> TrainResult:
    import torch

    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    accumulation = config.gradient_accumulation_steps(world_size)
    resume = resume_checkpoint(config)
    # Cheap checks and all the data work first: a bad record or length fails before the model loads.
    records = load_records(config.data_path)
    template = load_template(config.prompt_template)
    resolved = resolve_model(config.model)
    tokenizer = resolved.load_tokenizer()
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "right"
    train_set, val_set = prepare_data(config, records, template, tokenizer)

    cuda = torch.cuda.is_available()
    precision = pick_precision(config, cuda=cuda, bf16_supported=cuda and torch.cuda.is_bf16_supported())
    log.info("model %s, weights in %s", resolved.identity, str(precision.load_dtype).removeprefix("torch."))
    schedule = plan_schedule(
        config, len(train_set), accumulation=accumulation, world_size=world_size, cuda=cuda
    )
    model = load_model(config, resolved, precision, cuda=cuda)
    args = training_arguments(
        config,
        precision,
        has_eval=val_set is not None,
        accumulation=accumulation,
        world_size=world_size,
        cuda=cuda,
        schedule=schedule,
    )
    trainer = trainer_class()(
        model=model,
        args=args,
        train_dataset=train_set,
        eval_dataset=val_set,
        processing_class=tokenizer,
        data_collator=collator(config, tokenizer),
    )
    if world_size > 1:
        log.info("%d processes, distributed as %s", world_size, trainer.accelerator.distributed_type.value)
    started = time.perf_counter()
    output = trainer.train(resume_from_checkpoint=resume)
    metrics = dict(output.metrics)
    steps_run = trainer.state.global_step - (_step_of(resume) if resume else 0)
    if steps_run > 0:
        metrics["seconds_per_step"] = (time.perf_counter() - started) / steps_run
    if val_set is not None:
        metrics.update(final_evaluation(trainer))
    out = Path(config.output_dir)
    trainer.save_model(str(out))
    merged = None
    if trainer.is_world_process_zero():
        (out / TRAIN_CONFIG_NAME).write_text(
            config.model_dump_json(indent=2, exclude={"completion_only_loss"}) + "\n"
        )
        if config.merge and config.use_lora:
            merged = merge_adapter(resolved, out, out / MERGED_DIR, precision.load_dtype)
        record = run_record(config, resolved, len(records), metrics, trainer.state.global_step)
        record["examples"] = {"train": train_set.stats, "validation": val_set.stats if val_set else {}}
        (out / TRAIN_RUN_NAME).write_text(json.dumps(record, indent=2) + "\n")
        write_card(out, config, resolved, record)
    return TrainResult(
        output_dir=out,
        metrics=metrics,
        data={"train": train_set.stats, "validation": val_set.stats if val_set else {}},
        log_history=list(trainer.state.log_history),
        global_step=trainer.state.global_step,
        merged_dir=merged,
        main_process=trainer.is_world_process_zero(),
    )


def final_evaluation(trainer: Any) -> dict[str, float]:
    """The validation metrics of the model that is saved, evaluated once.

    The Trainer already evaluates at the last step (``eval_strategy="steps"`` evaluates at the
    end too), so its metrics are taken from the log rather than evaluating again; with
    ``load_best_model_at_end`` the saved model is the best checkpoint, whose loss is
    ``best_metric``. Only when the log has no evaluation of the last step (a resumed run that
    had nothing left to do) is the model evaluated here."""
    state = trainer.state
    last = [h for h in state.log_history if "eval_loss" in h and h.get("step") == state.global_step]
    if not last:
        return dict(trainer.evaluate())
    metrics = {k: v for k, v in last[-1].items() if k.startswith("eval_")}
    if trainer.args.load_best_model_at_end and state.best_metric is not None:
        metrics["eval_loss"] = state.best_metric
    return metrics


def write_card(out: Path, config: TrainConfig, resolved: ResolvedModel, record: dict[str, Any]) -> None:
    """README.md of the output folder: a short card in place of peft's template (see train/card.py)."""
    base_id = hub_repo_id(config.model, resolved.name)
    card = run_card(
        config.model_dump(exclude={"completion_only_loss"}),
        base_hub_id=base_id,
        base_identity=resolved.identity,
        data=record["data"],
        metrics={**record["metrics"], "global_step": record["global_step"]},
    )
    (out / TRAIN_CARD_NAME).write_text(card, encoding="utf-8")


def _step_of(checkpoint: str) -> int:
    try:
        return int(Path(checkpoint).name.rsplit("-", 1)[-1])
    except ValueError:
        return 0


def merge_adapter(resolved: ResolvedModel, adapter_dir: Path, out: Path, dtype: Any) -> Path:
    """Load the base unquantized, apply the adapter, merge, and save full weights to ``out``."""
    from peft import PeftModel

    base = resolved.load_model(dtype=dtype)
    merged = PeftModel.from_pretrained(base, adapter_dir).merge_and_unload()
    merged.save_pretrained(out, safe_serialization=True)
    resolved.load_tokenizer().save_pretrained(out)
    log.info("merged weights written to %s", out)
    return out


def run_record(
    config: TrainConfig, resolved: ResolvedModel, records: int, metrics: dict[str, Any], global_step: int
) -> dict[str, Any]:
    """meadow_train_run.json: the base model's identity, the data's provenance, the final metrics."""
    from meadow import __version__

    return {
        "meadow_version": __version__,
        "base_model": {
            "name": resolved.name,
            "identity": resolved.identity,
            "sha256": resolved.sha256,
            "gguf": resolved.gguf.name if resolved.gguf else None,
        },
        "data": data_provenance(config.data_path, records),
        "metrics": {k: v for k, v in metrics.items() if isinstance(v, (int, float))},
        "global_step": global_step,
    }


def data_provenance(data_path: str | Path, records: int | None = None) -> dict[str, Any]:
    """The data file's sha256 and record count and, when it is a meadow build's output (a
    manifest.json beside it), the build's recipe name, manifest sha256 and record count."""
    from meadow.io import file_info
    from meadow.schemas.manifest import Manifest
    from meadow.schemas.outputs import MANIFEST_NAME
    from meadow.train.data import data_file

    path = data_file(data_path)
    info = file_info(path)
    out: dict[str, Any] = {
        "path": str(data_path),
        "file": path.name,
        "sha256": info["sha256"],
        "bytes": info["bytes"],
        "records": len(load_records(path)) if records is None else records,
    }
    manifest_path = path.parent / MANIFEST_NAME
    if manifest_path.is_file():
        try:
            manifest = Manifest.read(manifest_path)
        except MeadowError as err:
            log.warning("%s; the data's build is not recorded", err)
        else:
            listed = manifest.outputs.get(path.name)
            out["build"] = {
                "recipe": manifest.recipe.get("name"),
                "manifest_sha256": file_info(manifest_path)["sha256"],
                "recipe_sha256": manifest.recipe_sha256 or None,
                "records": manifest.totals.records if "totals" in manifest.model_fields_set else None,
                "meadow_version": manifest.meadow_version or None,
                "matches_manifest": listed is not None and listed.sha256 == info["sha256"],
            }
    return out
