"""How many optimizer steps a run takes, and the settings that would make it train little or
silently, said before the model loads.

medAlpaca's defaults suit its runs of thousands of steps on GPUs. On a short run they go wrong
without a word: ``warmup_steps 100`` over 5 steps keeps the learning rate near 0, a
``logging_steps`` above the number of steps never prints a loss, a global batch larger than the
data makes every optimizer step one epoch, and 8-bit weights on a CPU make each of the (many,
accumulated) forward/backward passes an order of magnitude slower. The step count is the
Trainer's: ``ceil(batches / accumulation)`` per epoch, or ``max_steps``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

from meadow.train.config import TrainConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Schedule:
    steps: int
    """Optimizer steps of the run (``max_steps``, or the epochs' worth)."""
    passes_per_step: int
    """Forward/backward passes of ``per_device_batch_size`` examples per optimizer step and process."""
    examples_per_step: int
    """Examples one optimizer step sees (all processes): the global batch, or all the data."""
    logging_steps: int
    """``logging_steps``, at most ``steps``: the loss is logged at least once."""
    peak_learning_rate: float
    """The highest learning rate the run reaches (below ``learning_rate`` when warmup outlasts it)."""
    warnings: tuple[str, ...] = ()


def plan_schedule(
    config: TrainConfig, train_examples: int, *, accumulation: int, world_size: int = 1, cuda: bool = False
) -> Schedule:
    """The run's steps, and a warning (logged, and in ``Schedule.warnings``) for each setting
    that would make it train little or slowly without a word."""
    per_pass = config.per_device_batch_size * world_size
    batches = max(math.ceil(train_examples / per_pass), 1)
    steps_per_epoch = max(math.ceil(batches / accumulation), 1)
    steps = config.max_steps if config.max_steps > 0 else math.ceil(config.num_epochs * steps_per_epoch)
    passes = min(accumulation, batches)
    examples = min(config.global_batch_size, train_examples)
    warnings: list[str] = []

    peak = config.learning_rate
    warmup = config.warmup_steps if config.lr_scheduler_type != "constant" else 0
    if warmup and warmup >= steps:
        # the Trainer's schedulers: step k (from 1) uses learning_rate x (k - 1) / warmup_steps
        peak = config.learning_rate * (steps - 1) / warmup
        warnings.append(
            f"warmup_steps {warmup} is not below the {steps} optimizer step(s) of this run: the learning "
            f"rate only climbs from 0 to {peak:.2g} (of learning_rate {config.learning_rate:g}), so the "
            f"run barely trains; use --warmup_steps 0 (or a few) for a short run"
        )
    if config.global_batch_size > train_examples:
        warnings.append(
            f"global_batch_size {config.global_batch_size} is more than the {train_examples} training "
            f"examples: each optimizer step takes all {train_examples} (one epoch), so the "
            f"{steps} step(s) are {steps} epoch(s); a smaller --global_batch_size gives more steps "
            "per epoch"
        )
    logging_steps = min(config.logging_steps, steps)
    if logging_steps < config.logging_steps:
        log.info(
            "logging_steps %d is more than the %d step(s): the loss is logged every %d",
            config.logging_steps,
            steps,
            logging_steps,
        )
    if not cuda and config.train_in_8bit:
        warnings.append(
            "8-bit weights (train_in_8bit) on a CPU: bitsandbytes' CPU kernels make every forward/backward "
            "pass about an order of magnitude slower than float32; --train_in_8bit False trains faster "
            "here (8-bit saves GPU memory)"
        )

    accumulated = (
        f"{steps} optimizer step(s) of {examples} examples, each {passes} forward/backward pass(es) of "
        f"{config.per_device_batch_size} (gradient accumulation {accumulation} = global_batch_size "
        f"{config.global_batch_size} / per_device_batch_size {config.per_device_batch_size} / "
        f"{world_size} process(es)): {steps * passes} passes in all"
    )
    slow = not cuda and (config.train_in_8bit or steps * passes > 100)
    level = logging.WARNING if slow else logging.INFO
    log.log(level, "%s%s", "" if cuda else "on the CPU: ", accumulated)
    for warning in warnings:
        log.warning("%s", warning)
    return Schedule(
        steps=steps,
        passes_per_step=passes,
        examples_per_step=examples,
        logging_steps=logging_steps,
        peak_learning_rate=peak,
        warnings=tuple(warnings),
    )
