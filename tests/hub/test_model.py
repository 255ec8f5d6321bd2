"""meadow push --model: a training run's output as a Hub model repository (staged folder, model
card, refusals, one commit against the fake Hub of hub_fakes.py on 127.0.0.1)."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from hub_fakes import TOKEN, front_matter
from typer.testing import CliRunner

from meadow.cli import app
from meadow.errors import MeadowError
from meadow.eval.results import RESULTS_FORMAT, markdown_table, summarize
from meadow.hub.errors import PushError
from meadow.hub.model import push_model, stage_model
from meadow.hub.training_run import find_run
from meadow.io import file_info
from meadow.models import ResolvedModel, weights_sha256
from meadow.schemas.outputs import TRAIN_RUN_NAME
from meadow.train.config import TrainConfig
from meadow.train.trainer import data_provenance, run_record

SMOLLM2 = "HuggingFaceTB/SmolLM2-135M-Instruct"
LOCAL_BASE = "/home/someone/.cache/meadow/models/SmolLM2-135M-Instruct-b179c9523d0e"


@pytest.fixture(autouse=True)
def _caches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEADOW_CACHE", str(tmp_path / "meadow-cache"))  # the sha256 memo


def _save_safetensors(path: Path, names: list[str], shape: tuple[int, int] = (4, 8)) -> None:
    import torch
    from safetensors.torch import save_file

    gen = torch.Generator().manual_seed(0)
    save_file({n: torch.randn(shape, generator=gen) for n in names}, str(path))


def _tokenizer_files(folder: Path) -> None:
    (folder / "tokenizer.json").write_text(json.dumps({"version": "1.0", "model": {"type": "BPE"}}))
    (folder / "tokenizer_config.json").write_text(json.dumps({"eos_token": "<|im_end|>"}))
    (folder / "chat_template.jinja").write_text("{% for m in messages %}{{ m.content }}{% endfor %}")


LORA_KEYS = [
    f"base_model.model.model.layers.{i}.self_attn.{m}_proj.lora_{ab}.weight"
    for i in range(2)
    for m in "qv"
    for ab in "AB"
]


@pytest.fixture
def run_dir(demo_build: Path, tmp_path: Path) -> Path:
    """What `meadow train --merge True` writes (LoRA on the embedded SmolLM2, data = the demo
    build), with tiny weights: adapter, tokenizer, settings, run record, a checkpoint with its
    optimizer state, the Trainer's pickle, peft's template card and the merged weights."""
    build = tmp_path / "processed" / "demo"
    shutil.copytree(demo_build, build)
    out = tmp_path / "out"
    out.mkdir()
    config = TrainConfig(data_path=str(build), output_dir=str(out), train_in_8bit=False, merge=True)
    (out / "meadow_train.json").write_text(config.model_dump_json(indent=2, exclude={"completion_only_loss"}))
    adapter = {
        "base_model_name_or_path": LOCAL_BASE,
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "r": 8,
        "lora_alpha": 16,
        "lora_dropout": 0.1,
        "target_modules": ["q_proj", "v_proj"],
    }
    (out / "adapter_config.json").write_text(json.dumps(adapter, indent=2))
    _save_safetensors(out / "adapter_model.safetensors", LORA_KEYS)
    _tokenizer_files(out)
    resolved = ResolvedModel(
        name="SmolLM2-135M-Instruct",
        path=Path(LOCAL_BASE),
        sha256="ab" * 32,
        gguf=Path("SmolLM2-135M-Instruct.Q4_1.gguf"),
    )
    metrics = {"train_loss": 2.9137, "eval_loss": 2.8821, "epoch": 0.57, "train_runtime": 12.5}
    record = run_record(config, resolved, 78, metrics, 10)
    (out / TRAIN_RUN_NAME).write_text(json.dumps(record, indent=2))
    (out / "training_args.bin").write_bytes(b"\x80\x04pickle")
    (out / "README.md").write_text("---\nlibrary_name: peft\n---\n# Model Card for Model ID\n")
    ckpt = out / "checkpoint-10"
    ckpt.mkdir()
    shutil.copyfile(out / "adapter_model.safetensors", ckpt / "adapter_model.safetensors")
    (ckpt / "optimizer.pt").write_bytes(b"optimizer state")
    (ckpt / "trainer_state.json").write_text(
        json.dumps({"global_step": 10, "epoch": 0.57, "log_history": [{"loss": 3.1, "step": 10}]})
    )
    merged = out / "merged"
    merged.mkdir()
    (merged / "config.json").write_text(
        json.dumps({"model_type": "llama", "architectures": ["LlamaForCausalLM"]})
    )
    (merged / "generation_config.json").write_text("{}")
    _save_safetensors(merged / "model.safetensors", ["model.embed_tokens.weight", "lm_head.weight"])
    _tokenizer_files(merged)
    return out


def _results(name: str, sha256: str, correct: int, n: int = 10) -> dict[str, Any]:
    rows = [{"benchmark": "mmlu_anatomy", "acc": i < correct} for i in range(n)]
    return {
        "format": RESULTS_FORMAT,
        "model": {"name": name, "identity": f"{name}@{sha256[:12]}", "sha256": sha256, "base": None},
        "config": {"mode": "loglik", "shots": 0, "prompt": "medalpaca"},
        "benchmarks": summarize(rows, ["acc"]),
    }


@pytest.fixture
def evals(run_dir: Path, tmp_path: Path) -> list[Path]:
    """Two `meadow eval` results: this adapter, and the base model for comparison."""
    ours = tmp_path / "eval" / "adapter" / "results.json"
    base = tmp_path / "eval" / "base" / "results.json"
    for path, result in (
        (ours, _results("out", weights_sha256(run_dir), 6)),
        (base, _results("SmolLM2-135M-Instruct", "ab" * 32, 4)),
    ):
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps(result))
    return [ours, base]


# --------------------------------------------------------------------------- staging and the card


def test_stage_adapter_repo_and_card(run_dir, evals, tmp_path):
    folder = tmp_path / "stage"
    staged = push_model(
        run_dir,
        repo_id="org/smol-meadow",
        dataset_repo_id="org/medical-meadow",
        eval_paths=evals,
        stage_dir=folder,
    ).staged
    expected = {
        "README.md",
        "adapter_config.json",
        "adapter_model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "chat_template.jinja",
        "meadow_train.json",
        "meadow_train_run.json",
        "prompt_template.json",
        "eval/adapter.json",
        "eval/base.json",
    }
    assert staged.run.kind == "adapter"
    assert {p for p, _ in staged.files} == expected
    assert {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()} == expected
    for name in ("adapter_model.safetensors", "tokenizer.json", "meadow_train.json", "meadow_train_run.json"):
        assert (folder / name).read_bytes() == (run_dir / name).read_bytes(), name
    assert (folder / "eval/adapter.json").read_bytes() == evals[0].read_bytes()
    # the adapter loads on the Hub id of its base, not on the trainer's local folder
    adapter = json.loads((folder / "adapter_config.json").read_text())
    assert adapter["base_model_name_or_path"] == SMOLLM2
    original = json.loads((run_dir / "adapter_config.json").read_text())
    assert {k: v for k, v in adapter.items() if k != "base_model_name_or_path"} == {
        k: v for k, v in original.items() if k != "base_model_name_or_path"
    }
    from safetensors import safe_open

    with safe_open(str(folder / "adapter_model.safetensors"), "pt") as f:
        assert sorted(f.keys()) == sorted(LORA_KEYS)
    left = dict(staged.run.left_out)
    assert set(left) == {"checkpoint-10/", "merged/", "training_args.bin", "README.md"}
    assert "optimizer" in left["checkpoint-10/"]

    card = (folder / "README.md").read_text()
    meta = front_matter(card)
    assert meta == {
        "license": "apache-2.0",
        "base_model": SMOLLM2,
        "base_model_relation": "adapter",
        "library_name": "peft",
        "tags": ["medical", "medalpaca", "meadow", "lora"],
        "datasets": ["org/medical-meadow"],
        "language": ["en"],
        "pipeline_tag": "text-generation",
    }
    build = run_dir.parent / "processed" / "demo"
    manifest_sha = file_info(build / "manifest.json")["sha256"]
    data_sha = file_info(build / "merged_medical_meadow.json")["sha256"]
    body = card.split("\n---\n", 1)[1]
    assert "Not for clinical use" in body and "research only" in body
    assert "| meadow build (recipe name) | `demo` |" in body
    assert f"| build's `manifest.json` sha256 | `{manifest_sha}` |" in body
    assert f"`{data_sha}`" in body and "| records in the build | 78 |" in body
    assert "(https://huggingface.co/datasets/org/medical-meadow)" in body
    assert "| training loss (mean over the run) | 2.914 |" in body
    assert "| validation loss (final evaluation) | 2.882 |" in body
    assert "| optimizer steps | 10 |" in body
    assert "SmolLM2-135M-Instruct.Q4_1.gguf" in body and "ab" * 32 in body
    # the settings block is meadow_train.json, readable back as a train config
    settings = yaml.safe_load(body.split("```yaml\n", 1)[1].split("```", 1)[0])
    assert settings == json.loads((run_dir / "meadow_train.json").read_text())
    TrainConfig.model_validate(settings)
    # the evaluation table, as meadow eval --compare prints it, and which row is this model
    table = markdown_table([json.loads(p.read_text()) for p in evals])
    assert table in body
    assert f"- `eval/adapter.json`: `out@{weights_sha256(run_dir)[:12]}` (these weights)" in body
    assert "- `eval/base.json`: `SmolLM2-135M-Instruct@abababababab` (another model, for comparison)" in body
    assert 'AutoPeftModelForCausalLM.from_pretrained("org/smol-meadow")' in body
    assert "meadow generate " in body and "--model org/smol-meadow" in body
    assert '"\\n\\n### Instruction:\\n"' in body  # the medalpaca prompt, as the snippet builds it
    assert "| `adapter_model.safetensors` |" in body and "checkpoint-" not in body


def test_stage_merged_weights(run_dir, tmp_path):
    staged = push_model(run_dir, repo_id="org/smol-merged", merged=True, stage_dir=tmp_path / "s").staged
    assert staged.run.kind == "merged"
    assert {p for p, _ in staged.files} == {
        "README.md",
        "config.json",
        "generation_config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "chat_template.jinja",
        "meadow_train.json",
        "meadow_train_run.json",
        "prompt_template.json",
    }
    assert (tmp_path / "s/model.safetensors").read_bytes() == (
        run_dir / "merged/model.safetensors"
    ).read_bytes()
    meta = front_matter((tmp_path / "s/README.md").read_text())
    assert meta["library_name"] == "transformers" and meta["base_model_relation"] == "finetune"
    assert "datasets" not in meta
    card = (tmp_path / "s/README.md").read_text()
    assert 'AutoModelForCausalLM.from_pretrained("org/smol-merged")' in card
    assert "No evaluation results were pushed" in card
    assert "adapter_model.safetensors" in dict(staged.run.left_out)


def test_no_adapter_pushes_the_merged_weights(run_dir, tmp_path):
    for name in ("adapter_config.json", "adapter_model.safetensors"):
        (run_dir / name).unlink()
    assert find_run(run_dir).kind == "merged"


def test_a_run_without_lora_pushes_its_full_weights(run_dir, tmp_path):
    shutil.rmtree(run_dir / "merged")
    for name in ("adapter_config.json", "adapter_model.safetensors"):
        (run_dir / name).unlink()
    (run_dir / "config.json").write_text(json.dumps({"model_type": "llama"}))
    _save_safetensors(run_dir / "model-00001-of-00002.safetensors", ["a"])
    _save_safetensors(run_dir / "model-00002-of-00002.safetensors", ["b"])
    (run_dir / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"a": "1", "b": "2"}}))
    staged = stage_model(find_run(run_dir), tmp_path / "s", repo_id="org/full")
    assert staged.run.kind == "full"
    paths = {p for p, _ in staged.files}
    assert {"config.json", "model.safetensors.index.json", "model-00001-of-00002.safetensors"} <= paths
    assert "training_args.bin" not in paths and not any(p.startswith("checkpoint") for p in paths)
    assert front_matter((tmp_path / "s/README.md").read_text())["library_name"] == "transformers"


def test_without_a_run_record_the_card_looks_things_up(run_dir, tmp_path, monkeypatch):
    """An output folder from before meadow_train_run.json: the losses come from the newest
    checkpoint's trainer_state.json, the data from data_path (looked up now)."""
    (run_dir / TRAIN_RUN_NAME).unlink()
    shutil.copytree(run_dir / "checkpoint-10", run_dir / "checkpoint-2")
    state = {"global_step": 2, "log_history": [{"loss": 9.9, "step": 2}]}
    (run_dir / "checkpoint-2/trainer_state.json").write_text(json.dumps(state))
    stage_model(find_run(run_dir), tmp_path / "s", repo_id="org/x")
    card = (tmp_path / "s/README.md").read_text()
    assert "| training loss (last logged) | 3.1 |" in card and "9.9" not in card
    assert "From `checkpoint-10/trainer_state.json`" in card
    assert "| meadow build (recipe name) | `demo` |" in card
    assert "looked up when pushing" in card
    assert "meadow_train_run.json" not in {p.name for p in (tmp_path / "s").iterdir()}
    # data_path gone too: the card says so instead of failing
    shutil.rmtree(run_dir.parent / "processed")
    stage_model(find_run(run_dir), tmp_path / "s", repo_id="org/x")
    assert "could not be read when pushing" in (tmp_path / "s/README.md").read_text()


def test_license_and_base_model_overrides(run_dir, tmp_path):
    config = json.loads((run_dir / "meadow_train.json").read_text())
    config["model"] = str(tmp_path / "my-local-model")  # a local folder: no Hub id known
    (run_dir / "meadow_train.json").write_text(json.dumps(config))
    (run_dir / TRAIN_RUN_NAME).unlink()
    with pytest.raises(PushError, match="--base-model ORG/NAME") as err:
        push_model(run_dir, repo_id="org/x", stage_dir=tmp_path / "s")
    assert "Nothing was pushed" in str(err.value) and not (tmp_path / "s").exists()
    # merged weights are complete without a base: the card names none
    push_model(run_dir, repo_id="org/x", merged=True, stage_dir=tmp_path / "m")
    meta = front_matter((tmp_path / "m/README.md").read_text())
    assert "base_model" not in meta and meta["license"] == "other"
    push_model(run_dir, repo_id="org/x", base_model_id="org/base", license="mit", stage_dir=tmp_path / "s")
    assert (
        json.loads((tmp_path / "s/adapter_config.json").read_text())["base_model_name_or_path"] == "org/base"
    )
    meta = front_matter((tmp_path / "s/README.md").read_text())
    assert meta["base_model"] == "org/base" and meta["license"] == "mit"
    with pytest.raises(PushError, match="--base-model"):
        push_model(run_dir, repo_id="org/x", base_model_id="not a hub id", dry_run=True)


def test_hub_cache_snapshot_base_and_its_license(run_dir, tmp_path, monkeypatch):
    """A base model from the Hub cache: its id from the snapshot path, its license from its card."""
    snapshot = tmp_path / "hub" / "models--org--tiny" / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    (snapshot / "README.md").write_text("---\nlicense: llama2\n---\n# tiny\n")
    (tmp_path / "hub" / "models--org--tiny" / "refs").mkdir()
    (tmp_path / "hub" / "models--org--tiny" / "refs" / "main").write_text("0" * 40)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hub"))
    adapter = json.loads((run_dir / "adapter_config.json").read_text())
    adapter["base_model_name_or_path"] = str(snapshot)
    (run_dir / "adapter_config.json").write_text(json.dumps(adapter))
    config = json.loads((run_dir / "meadow_train.json").read_text())
    config["model"] = "org/tiny"
    (run_dir / "meadow_train.json").write_text(json.dumps(config))
    (run_dir / TRAIN_RUN_NAME).unlink()
    push_model(run_dir, repo_id="org/x", stage_dir=tmp_path / "s")
    meta = front_matter((tmp_path / "s/README.md").read_text())
    assert meta["base_model"] == "org/tiny" and meta["license"] == "llama2"
    assert (
        json.loads((tmp_path / "s/adapter_config.json").read_text())["base_model_name_or_path"] == "org/tiny"
    )


# --------------------------------------------------------------------------- refusals


def test_refusals_name_the_folder_and_what_was_expected(run_dir, tmp_path):
    with pytest.raises(PushError, match="no such folder"):
        find_run(tmp_path / "nowhere")
    with pytest.raises(PushError, match="a Trainer checkpoint") as err:
        find_run(run_dir / "checkpoint-10")
    assert str(run_dir) in str(err.value)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(PushError, match="no meadow_train.json") as err:
        find_run(empty)
    assert str(empty) in str(err.value)
    (run_dir / "adapter_model.safetensors").rename(run_dir / "adapter_model.bin")
    with pytest.raises(PushError, match="no adapter_model.safetensors") as err:
        find_run(run_dir)
    assert "adapter_model.bin" in str(err.value)
    (run_dir / "adapter_config.json").unlink()
    shutil.rmtree(run_dir / "merged")
    with pytest.raises(PushError, match="no weights to push") as err:
        find_run(run_dir)
    assert "adapter_config.json" in str(err.value) and "--merge True" in str(err.value)
    with pytest.raises(PushError, match="no merged weights"):
        find_run(run_dir, merged=True)
    (run_dir / "meadow_train.json").write_text("{not json")
    with pytest.raises(PushError, match="invalid JSON"):
        find_run(run_dir)


def test_bad_eval_file_and_stage_folder(run_dir, tmp_path):
    bad = tmp_path / "results.json"
    bad.write_text("{}")
    with pytest.raises(MeadowError, match="not a meadow eval results file"):
        push_model(run_dir, repo_id="org/x", eval_paths=[bad], stage_dir=tmp_path / "s")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(PushError, match="not empty"):
        push_model(run_dir, repo_id="org/x", stage_dir=mine)
    assert (mine / "notes.txt").read_text() == "keep me"
    push_model(run_dir, repo_id="org/x", stage_dir=tmp_path / "again")
    push_model(run_dir, repo_id="org/x", stage_dir=tmp_path / "again")  # an earlier stage is replaced


def test_data_provenance(demo_build, tmp_path):
    data = data_provenance(demo_build)
    assert data["records"] == 78 and data["file"] == "merged_medical_meadow.json"
    assert data["build"]["recipe"] == "demo" and data["build"]["matches_manifest"] is True
    assert data["build"]["manifest_sha256"] == file_info(demo_build / "manifest.json")["sha256"]
    # a plain medAlpaca JSON: no build recorded
    plain = tmp_path / "few.json"
    plain.write_text(json.dumps(json.loads((demo_build / "merged_medical_meadow.json").read_text())[:3]))
    assert data_provenance(plain)["records"] == 3 and "build" not in data_provenance(plain)
    # a build whose data file was edited afterwards
    build = tmp_path / "build"
    shutil.copytree(demo_build, build)
    (build / "merged_medical_meadow.json").write_text(plain.read_text())
    assert data_provenance(build)["build"]["matches_manifest"] is False


# --------------------------------------------------------------------------- the push


def test_push_model_uploads_the_staged_folder_in_one_commit(run_dir, evals, tmp_path, hub, caplog):
    caplog.set_level(logging.DEBUG)
    staged = stage_model(find_run(run_dir), tmp_path / "expected", repo_id="org/demo", eval_paths=evals)
    result = push_model(run_dir, repo_id="org/demo", eval_paths=evals, private=True)
    assert result.uploaded and result.commit_oid == "c" * 40
    assert hub.paths() == [
        "GET /api/whoami-v2",
        "POST /api/repos/create",
        "POST /api/validate-yaml",
        "POST /api/models/org/demo/preupload/main",
        "POST /api/models/org/demo/commit/main",
    ]
    create = json.loads(hub.calls[1].body)
    assert create["name"] == "demo" and create["organization"] == "org"
    assert create.get("type", "model") == "model"
    assert create.get("private") is True or create.get("visibility") == "private"
    assert sorted(hub.files) == [p for p, _ in staged.files]
    for path, data in hub.files.items():
        assert data == (tmp_path / "expected" / path).read_bytes(), path
    assert not any("checkpoint" in p or p.endswith((".bin", ".pt")) for p in hub.files)
    header = json.loads(hub.calls[-1].body.splitlines()[0])
    assert header["value"]["summary"].endswith(f"LoRA adapter of {SMOLLM2}")
    for call in hub.calls:
        assert TOKEN.encode() not in call.body
    assert all(TOKEN.encode() not in data for data in hub.files.values())
    assert TOKEN not in caplog.text


def test_push_model_to_a_branch_and_errors(run_dir, hub, monkeypatch):
    push_model(run_dir, repo_id="org/demo", revision="v1")
    assert "POST /api/models/org/demo/branch/v1" in hub.paths()
    assert hub.paths()[-1] == "POST /api/models/org/demo/commit/v1"
    hub.commit_status = 403
    with pytest.raises(PushError, match="refused to commit for org/demo .*no write access"):
        push_model(run_dir, repo_id="org/demo")
    monkeypatch.setenv("HF_TOKEN", "hf_wrong")
    with pytest.raises(PushError, match="rejected the token from HF_TOKEN") as err:
        push_model(run_dir, repo_id="org/demo")
    assert "hf_wrong" not in str(err.value)


def test_a_bad_run_is_refused_before_the_hub_is_called(tmp_path, hub):
    (tmp_path / "out").mkdir()
    with pytest.raises(PushError, match="no meadow_train.json"):
        push_model(tmp_path / "out", repo_id="org/demo")
    assert hub.calls == []


# --------------------------------------------------------------------------- CLI


def test_cli_model_dry_run_stage_and_argument_errors(run_dir, evals, tmp_path, monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    runner = CliRunner()
    base = ["push", "--model", str(run_dir), "--repo-id", "org/demo"]
    result = runner.invoke(app, [*base, "--dry-run", "--eval", str(evals[0]), "--eval", str(evals[1])])
    assert result.exit_code == 0, result.output
    assert "adapter_model.safetensors" in result.output and "eval/base.json" in result.output
    assert "left out: checkpoint-10/: Trainer checkpoint (optimizer states)" in result.output
    assert "nothing was uploaded" in result.output
    result = runner.invoke(app, [*base, "--merged", "--stage", str(tmp_path / "s")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "s/model.safetensors").is_file()

    build = run_dir.parent / "processed" / "demo"
    result = runner.invoke(app, ["push", str(build), *base[1:], "--dry-run"])
    assert result.exit_code == 1 and "both given" in result.output
    result = runner.invoke(app, ["push", str(build), "--repo-id", "org/d", "--merged", "--eval", "x.json"])
    assert result.exit_code == 1 and "--merged, --eval: only with --model" in result.output
    result = runner.invoke(app, ["push", "--model", str(tmp_path), "--repo-id", "org/d", "--dry-run"])
    assert result.exit_code == 1 and "no meadow_train.json" in result.output
    assert "Traceback" not in result.output


# --------------------------------------------------------------------------- a real run


@pytest.mark.slow
def test_a_real_training_run_is_staged(demo_build, tiny_model, tmp_path):
    """`meadow train` (1 step, a tiny local model) writes the run record, and its output stages."""
    from meadow.train.config import load_config
    from meadow.train.trainer import train

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
        max_steps=1,
        eval_steps=1,
        warmup_steps=0,
        model_max_length=128,
    )
    train(config)
    record = json.loads((out / TRAIN_RUN_NAME).read_text())
    assert record["data"]["build"]["recipe"] == "demo" and record["data"]["records"] == 78
    assert (
        record["global_step"] == 1 and "train_loss" in record["metrics"] and "eval_loss" in record["metrics"]
    )
    assert record["base_model"]["name"] == "tiny"
    assert (out / "checkpoint-1" / "optimizer.pt").is_file()
    staged = push_model(
        out, repo_id="org/tiny-meadow", base_model_id="org/tiny", stage_dir=tmp_path / "s"
    ).staged
    paths = {p for p, _ in staged.files}
    assert {"adapter_model.safetensors", "adapter_config.json", "tokenizer.json", TRAIN_RUN_NAME} <= paths
    assert not any(p.startswith("checkpoint") or p.endswith((".pt", ".bin", ".pth")) for p in paths)
    card = (tmp_path / "s/README.md").read_text()
    assert f"| training loss (mean over the run) | {record['metrics']['train_loss']:.4g} |" in card
    assert "`demo`" in card
