"""Real few-step runs of `meadow train` on the embedded SmolLM2 (CPU, LoRA, no 8-bit: fast)."""

import json

import pytest
import torch
from typer.testing import CliRunner

from meadow.cli import app
from meadow.models import resolve_model
from meadow.schemas.outputs import MERGED_DIR
from meadow.train.config import load_config
from meadow.train.prompt import load_template
from meadow.train.trainer import train

pytestmark = pytest.mark.slow

FAST = {"train_in_8bit": False, "fp16": False, "model_max_length": 128, "warmup_steps": 0}


def test_loss_decreases_adapter_reloads_merges_and_generates(meadow_cache, few_records, tmp_path):
    from peft import PeftModel

    record = json.loads(few_records.read_text())[0]
    data = tmp_path / "one.json"
    data.write_text(json.dumps([record, record]))  # one repeated batch
    out = tmp_path / "out"
    config = load_config(
        **FAST,
        data_path=str(data),
        output_dir=str(out),
        val_set_size=0,
        per_device_batch_size=2,
        global_batch_size=2,
        max_steps=6,
        learning_rate=3e-3,
        lr_scheduler_type="constant",
        lora_dropout=0,
        logging_steps=1,
        merge=True,
    )
    result = train(config)
    losses = [h["loss"] for h in result.log_history if "loss" in h]
    assert len(losses) == 6 and result.global_step == 6
    assert losses[-1] < 0.7 * losses[0], losses
    assert (out / "adapter_model.safetensors").is_file() and (out / "adapter_config.json").is_file()
    assert json.loads((out / "meadow_train.json").read_text())["max_steps"] == 6

    # the saved adapter reloads on the base model and generates; the merged model agrees with it
    resolved = resolve_model(None)
    tokenizer = resolved.load_tokenizer()
    model = PeftModel.from_pretrained(resolved.load_model(dtype=torch.float32), out).eval()
    prompt = load_template().render(record["instruction"], record["input"])
    enc = tokenizer(prompt, return_tensors="pt")
    with torch.inference_mode():
        generated = model.generate(**enc, max_new_tokens=8, do_sample=False)
        adapter_logits = model(**enc).logits
    assert generated.shape[1] == enc["input_ids"].shape[1] + 8
    merged = resolve_model(result.merged_dir).load_model(dtype=torch.float32).eval()
    assert result.merged_dir == out / MERGED_DIR
    with torch.inference_mode():
        torch.testing.assert_close(merged(**enc).logits, adapter_logits, atol=1e-3, rtol=1e-3)


def test_cli_medalpaca_flags_eval_loss_and_resume(meadow_cache, few_records, tmp_path):
    out = tmp_path / "out"
    common = [
        "train",
        f"--data_path={few_records}",
        "--output_dir",
        str(out),
        "--train_in_8bit",
        "False",
        "--use_lora",
        "True",
        "--fp16",
        "False",
        "--bf16",
        "False",
        "--tf32",
        "False",
        "--global_batch_size",
        "2",
        "--per_device_batch_size",
        "2",
        "--model_max_length",
        "128",
        "--lora_target_modules=[q_proj,v_proj]",
        "--val_set_size",
        "2",
        "--eval_steps",
        "2",
        "--logging_steps",
        "1",
    ]
    runner = CliRunner()
    first = runner.invoke(app, [*common, "--max_steps", "2"])
    assert first.exit_code == 0, first.output
    assert "eval_loss" in first.output
    assert (out / "checkpoint-2" / "trainer_state.json").is_file()

    second = runner.invoke(app, [*common, "--max_steps", "3", "--resume_from_checkpoint", "True"])
    assert second.exit_code == 0, second.output
    state = json.loads((out / "checkpoint-3" / "trainer_state.json").read_text())
    assert state["global_step"] == 3
    assert [h["step"] for h in state["log_history"] if "loss" in h] == [1, 2, 3]


def test_cli_errors_before_loading_anything(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"instruction": "i", "output": "o"}]))
    runner = CliRunner()
    result = runner.invoke(app, ["train", "--data_path", str(bad), "--train_in_8bit=False", "--fp16=False"])
    assert result.exit_code == 1
    assert "record 0: missing field(s) input" in result.output
    result = runner.invoke(app, ["train", "--fp16", "True", "--bf16", "True"])
    assert result.exit_code == 1 and "at most one of fp16 and bf16" in result.output
    result = runner.invoke(app, ["train", "--config", str(tmp_path / "none.yaml")])
    assert result.exit_code == 1 and "no such config file" in result.output


def test_short_run_logs_its_loss_evaluates_once_and_writes_a_card(tiny_model, demo_build, tmp_path):
    out = tmp_path / "out"
    config = load_config(
        model=str(tiny_model),
        data_path=str(demo_build),
        output_dir=str(out),
        train_in_8bit=False,
        fp16=False,
        val_set_size=4,
        per_device_batch_size=2,
        global_batch_size=2,
        max_steps=3,
        eval_steps=2,
        model_max_length=128,
    )  # medAlpaca's logging_steps 10 and warmup_steps 100
    result = train(config)
    history = result.log_history
    assert [h["step"] for h in history if "loss" in h] == [3]  # logging_steps capped to the 3 steps
    evaluated = [h["step"] for h in history if "eval_loss" in h]
    assert evaluated == [2, 3]  # every eval_steps and at the end, once
    assert result.metrics["eval_loss"] == min(h["eval_loss"] for h in history if "eval_loss" in h)

    card = (out / "README.md").read_text()
    assert "[More Information Needed]" not in card and "cache" not in card
    assert "Not for clinical use" in card and "library_name: peft" in card
    data = json.loads((out / "meadow_train_run.json").read_text())["data"]
    assert f"`{data['sha256']}`" in card and "the meadow build `demo`" in card
    assert f"`{result.metrics['train_loss']:.4g}`" not in card  # numbers are plain, settings are code
    assert f"| training loss (mean over the run) | {result.metrics['train_loss']:.4g} |" in card
    assert "| `warmup_steps` | `100` |" in card and "tiny" in card


@pytest.mark.parametrize("quantized", [False, True], ids=["float32", "8bit"])
def test_bitsandbytes_only_when_asked_and_no_library_noise(tiny_model, demo_build, tmp_path, quantized):
    """A fresh process: bitsandbytes is imported only for 8-bit/4-bit weights, and neither its CPU
    kernel warning nor transformers' gradient-checkpointing FutureWarnings (raised for peft) show."""
    import subprocess
    import sys

    script = f"""
import sys
from meadow.train.config import load_config
from meadow.train.trainer import train
train(load_config(model={str(tiny_model)!r}, data_path={str(demo_build)!r}, output_dir={str(tmp_path)!r},
    train_in_8bit={quantized}, fp16=False, val_set_size=0, per_device_batch_size=2, global_batch_size=2,
    max_steps=1, warmup_steps=0, model_max_length=64))
print("bitsandbytes imported:", sys.modules.get("bitsandbytes") is not None)
"""
    run = subprocess.run(
        [sys.executable, "-W", "default", "-c", script], capture_output=True, text=True, timeout=600
    )
    assert run.returncode == 0, run.stderr
    assert f"bitsandbytes imported: {quantized}" in run.stdout
    assert "gemm_4bit_forward" not in run.stderr
    assert "is_gradient_checkpointing" not in run.stderr and "gradient_checkpointing_enable" not in run.stderr
    assert "Warning" not in run.stderr.replace("DeprecationWarning", ""), run.stderr
