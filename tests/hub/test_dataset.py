"""meadow push of a build: verification of the build and the staged repository folder (loaded back
with ``datasets``)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from hub_fakes import DEMO, REPO, front_matter
from typer.testing import CliRunner

from meadow import sources
from meadow.build import build
from meadow.cli import app
from meadow.hub.dataset import find_build, push, stage, verify_build
from meadow.hub.errors import PushError
from meadow.schemas.outputs import PARQUET_NAME
from meadow.schemas.recipe import load_recipe

# --------------------------------------------------------------------------- staging


def test_stage_writes_the_hub_layout(build_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)  # where the manifest's recipe_path (recipes/demo.yaml) is
    manifest = json.loads((build_dir / "manifest.json").read_text())
    staged = stage(build_dir, tmp_path / "stage", repo_id="org/medical-meadow-demo")
    folder = tmp_path / "stage"
    names = [name for name, s in manifest["sources"].items() if s["sampled"]]
    expected = {
        "README.md",
        "LICENSE.md",
        "manifest.json",
        "recipe.yaml",
        "merged_medical_meadow.json",
        "merged_medical_meadow.parquet",
        *(f"data/{n}/train-00000-of-00001.parquet" for n in names),
        # every other file the build wrote (the demo's decontamination report)
        *(
            n
            for n in manifest["outputs"]
            if n.endswith((".json", ".jsonl")) and n != "merged_medical_meadow.json"
        ),
    }
    assert "contamination.jsonl" in expected
    assert {p for p, _ in staged.files} == expected
    assert {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()} == expected
    assert (folder / "manifest.json").read_bytes() == (build_dir / "manifest.json").read_bytes()
    assert (folder / PARQUET_NAME).read_bytes() == (build_dir / PARQUET_NAME).read_bytes()
    assert (folder / "recipe.yaml").read_bytes() == DEMO.read_bytes()

    # Each source's file holds exactly its rows, in the merged order.
    merged = pq.read_table(build_dir / PARQUET_NAME).to_pylist()
    start = 0
    for name in names:
        rows = pq.read_table(folder / f"data/{name}/train-00000-of-00001.parquet").to_pylist()
        assert len(rows) == manifest["sources"][name]["sampled"] == staged.configs[name]
        assert rows == merged[start : start + len(rows)]
        start += len(rows)
    assert start == len(merged) == staged.configs["default"]

    card = (folder / "README.md").read_text()
    meta = front_matter(card)
    assert meta["license"] == "other" and meta["license_link"] == "LICENSE.md"
    assert meta["task_categories"] == ["question-answering", "text-generation"]
    assert meta["size_categories"] == ["n<1K"]
    configs = {c["config_name"]: c for c in meta["configs"]}
    assert configs["default"]["default"] is True
    assert configs["default"]["data_files"] == [{"split": "train", "path": PARQUET_NAME}]
    assert set(configs) == {"default", *names}
    assert configs["cord19"]["data_files"] == [{"split": "train", "path": "data/cord19/train-*.parquet"}]
    assert 'load_dataset("org/medical-meadow-demo", ' in card
    specs = sources.registry()
    for s in manifest["sources"].values():  # every source's citation and license
        citation = specs[s["loader"]].citation.strip()
        assert citation.splitlines()[0] in card
        assert specs[s["loader"]].license in (folder / "LICENSE.md").read_text()


def test_staged_folder_loads_with_datasets(build_dir, tmp_path, monkeypatch):
    datasets = pytest.importorskip("datasets")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    folder = tmp_path / "stage"
    staged = stage(build_dir, folder, repo_id="org/demo")
    cache = str(tmp_path / "cache")
    one = datasets.load_dataset(
        "parquet",
        data_files={"train": str(folder / "data/cord19/train-00000-of-00001.parquet")},
        cache_dir=cache,
    )
    assert one["train"].num_rows == staged.configs["cord19"]
    assert one["train"].column_names == ["instruction", "input", "output", "source", "id", "meta"]
    merged = datasets.load_dataset("parquet", data_files=str(folder / PARQUET_NAME), cache_dir=cache)
    assert merged["train"].num_rows == staged.configs["default"]
    # The card's configs, read the way the Hub's viewer and load_dataset(repo) read them.
    assert datasets.get_dataset_config_names(str(folder)) == list(staged.configs)
    mmlu = datasets.load_dataset(str(folder), "mmlu", cache_dir=cache)
    assert mmlu["train"].num_rows == staged.configs["mmlu"]


def test_the_recipe_falls_back_to_the_manifests_copy(tmp_path):
    recipe = tmp_path / "demo.yaml"
    shutil.copyfile(DEMO, recipe)
    build_dir = build(recipe, output_dir=tmp_path / "out", base_dir=REPO, progress=False).out_dir
    recipe.write_text(recipe.read_text() + "# edited after the build\n")
    stage(build_dir, tmp_path / "stage", repo_id="org/demo")
    text = (tmp_path / "stage" / "recipe.yaml").read_text()
    assert text.startswith("# The recipe of this build as meadow resolved it")
    copy = tmp_path / "copy.yaml"
    copy.write_text(text)
    assert list(load_recipe(copy).sources) == list(load_recipe(DEMO).sources)


def test_stage_refuses_a_folder_that_is_not_a_stage(build_dir, tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(PushError, match="not empty"):
        stage(build_dir, tmp_path / "mine", repo_id="org/demo")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"
    stage(build_dir, tmp_path / "again", repo_id="org/demo")
    stage(build_dir, tmp_path / "again", repo_id="org/demo")  # an earlier stage is replaced


# --------------------------------------------------------------------------- refusing bad builds


def test_a_build_without_manifest_is_refused(build_dir, tmp_path):
    (build_dir / "manifest.json").unlink()
    with pytest.raises(PushError, match="no manifest.json"):
        push(build_dir, repo_id="org/demo", stage_dir=tmp_path / "stage")
    assert not (tmp_path / "stage").exists()


@pytest.mark.parametrize(
    "victim", ["merged_medical_meadow.parquet", "merged_medical_meadow.json", "README.md"]
)
def test_a_changed_or_half_written_build_is_refused(build_dir, tmp_path, victim):
    path = build_dir / victim
    path.write_bytes(path.read_bytes()[:-10])  # cut short, as a crash mid-write would
    with pytest.raises(PushError, match="does not match manifest.json") as err:
        push(build_dir, repo_id="org/demo", stage_dir=tmp_path / "stage")
    assert victim in str(err.value) and "Nothing was pushed" in str(err.value)
    assert not (tmp_path / "stage").exists()


def test_a_missing_output_is_refused(build_dir):
    (build_dir / "merged_medical_meadow.json").unlink()
    with pytest.raises(PushError, match="missing"):
        verify_build(build_dir)


def test_find_build(build_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert find_build(None, tmp_path / "processed") == build_dir
    shutil.copytree(build_dir, tmp_path / "processed" / "other")
    with pytest.raises(PushError, match="2 builds"):
        find_build(None, tmp_path / "processed")
    with pytest.raises(PushError, match="no build"):
        find_build(None, tmp_path / "nothing")
    assert find_build(DEMO) == Path("data/processed/demo")


def test_push_checks_the_build_before_anything_else(build_dir, hub):
    (build_dir / "manifest.json").unlink()
    with pytest.raises(PushError, match="no manifest.json"):
        push(build_dir, repo_id="org/demo")
    assert hub.calls == []


# --------------------------------------------------------------------------- CLI


def test_cli_stage_dry_run_and_errors(build_dir, tmp_path, monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    runner = CliRunner()
    result = runner.invoke(
        app, ["push", str(build_dir), "--repo-id", "org/demo", "--stage", str(tmp_path / "s")]
    )
    assert result.exit_code == 0, result.output
    assert "nothing was uploaded" in result.output and (tmp_path / "s" / "README.md").is_file()
    result = runner.invoke(app, ["push", str(build_dir), "--repo-id", "org/demo", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "data/cord19/train-00000-of-00001.parquet" in result.output
    result = runner.invoke(app, ["push", str(build_dir), "--repo-id", "not-a-repo-id", "--dry-run"])
    assert result.exit_code == 1 and "ORG/NAME" in result.output
    (build_dir / "manifest.json").unlink()
    result = runner.invoke(app, ["push", str(build_dir), "--repo-id", "org/demo", "--dry-run"])
    assert result.exit_code == 1 and "no manifest.json" in result.output and "Traceback" not in result.output
