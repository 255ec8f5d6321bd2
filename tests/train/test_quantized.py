"""8-bit and 4-bit (QLoRA) base weights through bitsandbytes, and gradient checkpointing, on the CPU:
one LoRA step each."""

import importlib.util
import math

import pytest

from meadow.train.config import load_config
from meadow.train.trainer import train

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("bitsandbytes") is None, reason="bitsandbytes not installed"),
]


@pytest.mark.parametrize(
    ("flags"),
    [
        {"train_in_8bit": True},
        {"load_in_4bit": True},
        {"load_in_4bit": True, "gradient_checkpointing": True},
        {"gradient_checkpointing": True},
    ],
    ids=["8bit", "4bit", "4bit-checkpointing", "checkpointing"],
)
def test_quantized_lora_step(meadow_cache, few_records, tmp_path, flags):
    config = load_config(
        **{"train_in_8bit": False, **flags},
        data_path=str(few_records),
        output_dir=str(tmp_path / "out"),
        fp16=False,
        per_device_batch_size=1,
        global_batch_size=1,
        model_max_length=64,
        max_steps=1,
        val_set_size=0,
        logging_steps=1,
    )
    result = train(config)
    (step,) = [h for h in result.log_history if "loss" in h]
    assert math.isfinite(step["loss"]) and step["grad_norm"] > 0  # gradients reach the LoRA weights
    assert (tmp_path / "out" / "adapter_model.safetensors").is_file()
