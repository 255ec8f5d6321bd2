"""One flag style everywhere: - or _ in option names, and on/off flags with an optional True/False."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from meadow.build.run import BuildResult
from meadow.cli import app
from meadow.train.config import TrainConfig

runner = CliRunner()


@pytest.fixture
def build_options(monkeypatch, tmp_path) -> list:
    """`meadow build` with the build replaced: the RunOptions each call got."""
    seen: list = []

    def fake_build(recipe, options):
        seen.append(options)
        return BuildResult(tmp_path / "demo", 0, {})

    monkeypatch.setattr("meadow.build.build", fake_build)
    return seen


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["--output_dir", "elsewhere"], {"output_dir": Path("elsewhere")}),
        (["--output-dir=elsewhere"], {"output_dir": Path("elsewhere")}),
        (["--output_dir=elsewhere", "--keep_work"], {"output_dir": Path("elsewhere"), "keep_work": True}),
        (["--strict", "True"], {"strict": True}),
        (["--strict", "false"], {"strict": False}),
        (["--strict=true", "--replay", "False"], {"strict": True, "replay": False}),
        (["--strict", "--replay"], {"strict": True, "replay": True}),
        (["--keep_work", "TRUE", "--workers", "2"], {"keep_work": True, "workers": 2}),
    ],
)
def test_build_takes_either_spelling_and_explicit_booleans(build_options, flags, expected):
    res = runner.invoke(app, ["build", "r.yaml", "-q", *flags])
    assert res.exit_code == 0, res.output
    (options,) = build_options
    for name, value in expected.items():
        assert getattr(options, name) == value, name


def test_a_flag_value_other_than_true_or_false_is_an_error(build_options):
    res = runner.invoke(app, ["build", "r.yaml", "--strict=maybe"])
    assert res.exit_code == 2 and "Usage:" in res.output
    assert "Invalid value for --strict: takes no value, or True or False (got 'maybe')" in res.output
    res = runner.invoke(app, ["build", "r.yaml", "--strict", "maybe"])  # a second argument, as before
    assert res.exit_code == 2 and "unexpected extra argument(s) (maybe)" in res.output
    assert build_options == []


@pytest.mark.parametrize("spelling", ["--output-dir", "--output_dir"])
def test_eval_takes_either_spelling(spelling, tmp_path):
    res = runner.invoke(app, ["eval", spelling, str(tmp_path), "--max_new_tokens", "4", "--batch_size", "2"])
    assert res.exit_code == 1 and "name at least one --benchmark" in res.stderr


def test_help_shows_the_dash_spelling_only():
    res = runner.invoke(app, ["eval", "--help"], env={"COLUMNS": "200"})
    assert "--output-dir" in res.stdout and "--max-new-tokens" in res.stdout
    assert "--output_dir" not in res.stdout and "--max_new_tokens" not in res.stdout


def test_train_help_lists_every_flag_with_default_and_description():
    res = runner.invoke(app, ["train", "--help"], env={"COLUMNS": "200"})
    assert res.exit_code == 0
    lines = res.stdout.splitlines()
    for name in TrainConfig.model_fields:
        assert any(f" --{name} " in line for line in lines), name
    (row,) = [line for line in lines if " --learning_rate " in line]
    assert "float" in row and "2e-05" in row and "Peak learning rate" in row
    (row,) = [line for line in lines if " --lora_target_modules " in line]
    assert "list[str]" in row and "q_proj,v_proj" in row and "[q_proj,v_proj]" in row


def test_train_typo_names_the_closest_flag():
    res = runner.invoke(app, ["train", "--lerning_rate", "3e-4"])
    assert res.exit_code == 1
    assert "unknown flag --lerning_rate; did you mean --learning_rate?" in res.stderr


def test_train_config_file_typo_names_the_file_and_closest_key(tmp_path):
    config = tmp_path / "train.yaml"
    config.write_text("lerning_rate: 0.001\n")
    res = runner.invoke(app, ["train", "--config", str(config)])
    assert res.exit_code == 1
    assert f"{config}: unknown key lerning_rate; did you mean learning_rate?" in res.stderr
