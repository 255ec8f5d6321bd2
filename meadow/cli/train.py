"""`meadow train`: medAlpaca's train.py command line, parsed by meadow.train.config."""

from __future__ import annotations

import typer

from meadow.cli import render
from meadow.cli.console import fail, out
from meadow.errors import MeadowError

# medAlpaca's fire-style flags are not declared to click: meadow.train.config parses them.
COMMAND_OPTIONS = {"context_settings": {"allow_extra_args": True, "ignore_unknown_options": True}}


def train(ctx: typer.Context) -> None:
    """Fine-tune a model on a build with medAlpaca's train.py flags (LoRA, 8-bit, 4-bit QLoRA).

    medAlpaca's command line works as written, `python medalpaca/train.py`
    replaced by `meadow train`: --flag value or --flag=value, booleans as
    True/False, e.g.

      meadow train --model HuggingFaceTB/SmolLM2-135M-Instruct
      --data_path data/processed/demo --output_dir output
      --train_in_8bit False --use_lora True --bf16 False --fp16 False
      --global_batch_size 8 --per_device_batch_size 2 --max_steps 10

    --config FILE.yaml takes the same keys; flags override it.

    medAlpaca's flags (its defaults): --model (embedded SmolLM2)
    --data_path (a JSON file or a build folder) --prompt_template (medalpaca,
    or a JSON path) --val_set_size 0.1 --output_dir ./output
    --train_in_8bit True --use_lora True --model_max_length 256
    --train_on_inputs True --fp16 True --bf16 False --tf32
    --global_batch_size 128 --per_device_batch_size 2
    --gradient_checkpointing False --lora_r 8 --lora_alpha 16
    --lora_dropout 0.1 --lora_target_modules q_proj,v_proj --num_epochs 3
    --learning_rate 2e-5 --warmup_steps 100 --eval_steps 200
    --save_total_limit 3 --optim adamw_torch --lr_scheduler_type cosine
    --use_wandb False --wandb_project medalpaca --wandb_run_name test.

    meadow's additions: --load_in_4bit (QLoRA), --completion_only_loss,
    --packing (padding-free rows, no attention across examples), --max_steps,
    --resume_from_checkpoint (a folder, or True: the latest), --merge (also
    write merged weights to OUTPUT_DIR/merged), --logging_steps 10, --seed 42.

    fp16 needs a GPU: on a CPU it becomes float32. Several processes:
    accelerate launch --multi_gpu --num_processes N -m meadow.cli train ...
    """
    from meadow.train.config import load_config, parse_flags
    from meadow.train.trainer import train as run_train

    try:
        flags, config_file = parse_flags(list(ctx.args))
        config = load_config(config_file, **flags)
        result = run_train(config)
    except MeadowError as err:
        fail(err)
    if not result.main_process:
        return
    out().print(render.train_table(result))
    where = f"{result.output_dir}" + (f" (merged: {result.merged_dir})" if result.merged_dir else "")
    out().print(f"saved to {where}", highlight=False)
