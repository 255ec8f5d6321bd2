"""Two-process DDP (gloo) on the CPU through `accelerate launch`."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ACCELERATE = shutil.which("accelerate", path=str(Path(sys.executable).parent)) or shutil.which("accelerate")


@pytest.mark.skipif(ACCELERATE is None, reason="accelerate's launcher is not installed")
def test_accelerate_launch_two_cpu_processes(meadow_cache, few_records, tmp_path):
    out = tmp_path / "out"
    # On a machine without a GPU, --multi_gpu starts torchrun processes that meet over gloo;
    # accelerate's --cpu with several processes needs mpirun instead.
    command = [
        ACCELERATE, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "29517",
        "-m", "meadow.cli", "train",
        "--data_path", str(few_records), "--output_dir", str(out),
        "--train_in_8bit", "False", "--fp16", "False", "--val_set_size", "0", "--num_epochs", "1",
        "--global_batch_size", "4", "--per_device_batch_size", "2", "--max_steps", "2",
        "--model_max_length", "64", "--logging_steps", "1",
    ]  # fmt: skip
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", OMP_NUM_THREADS="1")
    run = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "2 process(es)" in run.stderr
    state = json.loads((out / "checkpoint-2" / "trainer_state.json").read_text())
    # 6 examples split between 2 processes (3 each, batches of 2): an epoch is 2 steps. Two
    # unsharded processes would each take 3 steps per epoch (epoch 0.67 here).
    assert state["global_step"] == 2 and state["epoch"] == pytest.approx(1.0)
    assert (out / "adapter_model.safetensors").is_file()
