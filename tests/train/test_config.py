import pytest

from meadow.errors import MeadowError
from meadow.train import config as config_module
from meadow.train.config import TrainConfig, load_config, parse_flags


def test_defaults_are_medalpacas():
    c = TrainConfig()
    assert (c.val_set_size, c.model_max_length, c.train_on_inputs) == (0.1, 256, True)
    assert (c.train_in_8bit, c.use_lora, c.fp16, c.bf16) == (True, True, True, False)
    assert (c.lora_r, c.lora_alpha, c.lora_dropout) == (8, 16, 0.1)
    assert c.lora_target_modules == ["q_proj", "v_proj"]
    assert (c.per_device_batch_size, c.global_batch_size, c.num_epochs, c.learning_rate) == (2, 128, 3, 2e-5)
    assert (c.eval_steps, c.warmup_steps, c.optim, c.lr_scheduler_type) == (200, 100, "adamw_torch", "cosine")


def test_medalpaca_readme_command_line():
    # medAlpaca's README, with `python medalpaca/train.py` replaced by `meadow train`
    readme = """--model PATH --data_path medical_meadow_small.json --output_dir output --train_in_8bit True
        --use_lora True --bf16 True --tf32 False --fp16 False --global_batch_size 128
        --per_device_batch_size 8"""
    args = readme.split()
    flags, config_file = parse_flags(args)
    assert config_file is None
    c = TrainConfig.model_validate(flags)
    assert c.model == "PATH" and c.bf16 and not c.fp16 and c.tf32 is False and c.train_in_8bit
    assert c.gradient_accumulation_steps(world_size=1) == 16
    assert c.gradient_accumulation_steps(world_size=4) == 4


@pytest.mark.parametrize(
    "value", ["[q_proj,v_proj]", "('q_proj','v_proj')", "q_proj,v_proj", "q_proj, v_proj"]
)
def test_fire_style_flags_and_module_lists(value):
    flags, _ = parse_flags([f"--lora_target_modules={value}", "--use-lora=false", "--train_in_8bit", "False"])
    c = TrainConfig.model_validate(flags)
    assert c.lora_target_modules == ["q_proj", "v_proj"]
    assert c.use_lora is False and c.train_in_8bit is False


def test_bare_flag_is_true_and_errors():
    flags, _ = parse_flags(["--merge", "--bf16", "--fp16", "False"])
    assert flags == {"merge": "True", "bf16": "True", "fp16": "False"}
    with pytest.raises(MeadowError, match="given twice"):
        parse_flags(["--lora_r", "4", "--lora_r=8"])
    with pytest.raises(MeadowError, match="unexpected argument 'x'"):
        parse_flags(["x"])


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ({"fp16": True, "bf16": True}, "at most one of fp16 and bf16"),
        ({"use_lora": False}, "8-bit training without LoRA"),
        ({"train_in_8bit": False, "load_in_4bit": True, "use_lora": False}, "4-bit .* needs use_lora"),
        ({"load_in_4bit": True}, "exclusive"),
        ({"no_such_flag": 1}, r"unknown flag --no_such_flag \(meadow train --help lists them\)"),
        ({"lerning_rate": 1}, "unknown flag --lerning_rate; did you mean --learning_rate\\?"),
        ({"lora_r": "x"}, "lora_r: Input should be a valid integer"),
        ({"train_on_inputs": True, "completion_only_loss": True}, "contradicts"),
        ({"val_set_size": 2.5}, "whole number"),
    ],
)
def test_clear_errors(flags, message):
    with pytest.raises(MeadowError, match=message):
        load_config(**flags)


def test_completion_only_loss_turns_off_train_on_inputs():
    assert load_config(completion_only_loss=True, train_in_8bit=False).train_on_inputs is False


def test_quantization_without_bitsandbytes(monkeypatch):
    real = config_module.importlib.util.find_spec
    monkeypatch.setattr(
        config_module.importlib.util, "find_spec", lambda name: None if name == "bitsandbytes" else real(name)
    )
    with pytest.raises(MeadowError, match="train_in_8bit needs the 'bitsandbytes' package"):
        load_config()
    with pytest.raises(MeadowError, match="load_in_4bit needs"):
        load_config(train_in_8bit=False, load_in_4bit=True)
    assert load_config(train_in_8bit=False).use_lora


def test_global_batch_must_divide():
    c = TrainConfig(global_batch_size=10, per_device_batch_size=4)
    with pytest.raises(MeadowError, match="not a multiple"):
        c.gradient_accumulation_steps(world_size=1)


def test_yaml_config_and_overrides(tmp_path):
    path = tmp_path / "train.yaml"
    path.write_text("data_path: data/processed/demo\nlora_r: 4\nlora_target_modules: [q_proj, k_proj]\n")
    c = load_config(path, lora_r="16")
    assert c.data_path == "data/processed/demo" and c.lora_r == 16
    assert c.lora_target_modules == ["q_proj", "k_proj"]
    path.write_text("lora_rank: 4\n")
    with pytest.raises(MeadowError, match=r"train\.yaml: unknown key lora_rank; did you mean lora_r\?"):
        load_config(path)
    path.write_text("- a\n")
    with pytest.raises(MeadowError, match="must be a mapping"):
        load_config(path)
    with pytest.raises(MeadowError, match="no such config file"):
        load_config(tmp_path / "missing.yaml")
