"""`meadow train`: medAlpaca's train.py command line, parsed by meadow.train.config."""

from __future__ import annotations

from typing import Any

import typer
from rich.console import Console

from meadow.cli import render
from meadow.cli.command import Command
from meadow.cli.console import fail, out
from meadow.errors import MeadowError


class TrainCommand(Command):
    """medAlpaca's fire-style flags are not declared to click (meadow.train.config parses them):
    `--help` lists them from TrainConfig after typer's own help."""

    def format_help(self, ctx: typer.Context, formatter: Any) -> None:
        from meadow.train.config import TrainConfig

        super().format_help(ctx, formatter)
        Console().print(render.train_flags(TrainConfig))


COMMAND_OPTIONS = {
    "cls": TrainCommand,
    "context_settings": {"allow_extra_args": True, "ignore_unknown_options": True},
}


def train(ctx: typer.Context) -> None:
    """Fine-tune a model on a build with medAlpaca's train.py flags (LoRA, 8-bit, 4-bit QLoRA).

    medAlpaca's command line works as written, `python medalpaca/train.py`
    replaced by `meadow train`: --flag value or --flag=value, booleans as
    True/False (a bare --flag is True), e.g.

      meadow train --model HuggingFaceTB/SmolLM2-135M-Instruct
      --data_path data/processed/demo --output_dir output
      --train_in_8bit False --use_lora True --bf16 False --fp16 False
      --global_batch_size 8 --per_device_batch_size 2 --max_steps 10

    --config FILE.yaml takes the same keys; flags override it. The flags, with
    medAlpaca's defaults, are listed below; meadow's additions follow
    medAlpaca's own, from --load_in_4bit on.

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
