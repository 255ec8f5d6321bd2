"""The run's step count, and the warnings for settings that make a short run train little or slowly."""

import logging

import pytest

from meadow.train.config import load_config
from meadow.train.schedule import plan_schedule


def plan(caplog, examples=70, cuda=False, **flags):
    config = load_config(**flags)
    with caplog.at_level(logging.INFO, logger="meadow.train.schedule"):
        return plan_schedule(
            config, examples, accumulation=config.gradient_accumulation_steps(1), world_size=1, cuda=cuda
        )


def test_medalpaca_defaults_on_a_tiny_run_say_why_it_will_not_train(caplog):
    # the newcomer's `meadow train --data_path data/processed/demo --max_steps 5`: medAlpaca's
    # defaults (8-bit, global batch 128, warmup 100, logging every 10 steps) on 70 examples, on a CPU
    schedule = plan(caplog, max_steps=5)
    assert schedule.steps == 5 and schedule.logging_steps == 5  # the loss is logged once
    assert schedule.peak_learning_rate == pytest.approx(8e-07)  # 2e-5 x 4 / 100
    warmup, batch, eight_bit = schedule.warnings
    assert "warmup_steps 100 is not below the 5 optimizer step(s)" in warmup and "8e-07" in warmup
    assert "global_batch_size 128 is more than the 70 training examples" in batch
    assert "order of magnitude slower" in eight_bit and "--train_in_8bit False" in eight_bit
    # the accumulation is said before training, as a warning on the CPU
    (said,) = [r for r in caplog.records if "gradient accumulation" in r.getMessage()]
    assert said.levelno == logging.WARNING
    assert "5 optimizer step(s) of 70 examples, each 35 forward/backward pass(es) of 2" in said.getMessage()
    assert "gradient accumulation 64 = global_batch_size 128 / per_device_batch_size 2" in said.getMessage()
    assert {r.getMessage() for r in caplog.records if r.levelno == logging.WARNING} >= set(schedule.warnings)


def test_a_sane_short_run_warns_of_nothing(caplog):
    schedule = plan(
        caplog,
        train_in_8bit=False,
        global_batch_size=4,
        per_device_batch_size=2,
        max_steps=10,
        warmup_steps=1,
        logging_steps=2,
    )
    assert schedule.warnings == () and schedule.logging_steps == 2 and schedule.passes_per_step == 2
    assert schedule.peak_learning_rate == 2e-5
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_steps_from_epochs_as_the_trainer_counts_them(caplog):
    # 70 examples, batches of 2 -> 35 batches; accumulation 4 -> ceil(35 / 4) = 9 steps per epoch
    schedule = plan(caplog, train_in_8bit=False, global_batch_size=8, num_epochs=2, warmup_steps=0)
    assert schedule.steps == 18 and schedule.examples_per_step == 8 and schedule.warnings == ()
    # a constant schedule has no warmup to outlast
    schedule = plan(
        caplog, train_in_8bit=False, global_batch_size=8, max_steps=3, lr_scheduler_type="constant"
    )
    assert schedule.warnings == () and schedule.peak_learning_rate == 2e-5
    # on a GPU, 8-bit is no warning and the accumulation is information
    caplog.clear()
    schedule = plan(caplog, cuda=True, global_batch_size=8, max_steps=3, warmup_steps=0)
    assert schedule.warnings == ()
    assert [r.levelno for r in caplog.records if "gradient accumulation" in r.getMessage()] == [logging.INFO]
