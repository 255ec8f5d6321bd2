"""The recipes ship with meadow: `meadow build demo` / `meadow check v1` work from any folder, a
path still works, and a wheel carries the recipes and the examples the demo reads."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from meadow.build import build
from meadow.cli import app
from meadow.errors import MeadowError
from meadow.schemas.outputs import JSON_NAME
from meadow.schemas.recipe import find_recipe, load_recipe, shipped_recipes

REPO = Path(__file__).resolve().parents[2]


def test_a_shipped_recipe_by_name_builds_the_same_from_any_folder(tmp_path: Path, monkeypatch):
    assert set(shipped_recipes()) == {"demo", "demo_llm", "v1"}
    monkeypatch.chdir(REPO)
    here = build("recipes/demo.yaml", output_dir=tmp_path / "here", progress=False)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    shipped = build("demo", progress=False)
    assert shipped.out_dir == elsewhere / "data/processed/demo"  # outputs go under the working dir
    assert (shipped.out_dir / JSON_NAME).read_bytes() == (here.out_dir / JSON_NAME).read_bytes()
    # v1's inputs stay relative to the working directory (data/raw/...), where `meadow fetch` puts them
    v1 = load_recipe("v1")
    assert all(not Path(p).is_absolute() for e in v1.sources.values() for p in e.patterns())
    res = CliRunner().invoke(app, ["check", "demo"])
    assert res.exit_code == 0, res.output


def test_a_path_wins_and_an_unknown_name_lists_the_shipped_ones(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "demo").write_text("name: mine\nsources: {}\n")  # a file named like a shipped recipe
    assert find_recipe("demo") == Path("demo")
    with pytest.raises(MeadowError, match=r"nosuch: no such recipe file.*shipped: demo, demo_llm, v1"):
        find_recipe("nosuch")
    assert find_recipe("recipes/x.yaml") == Path("recipes/x.yaml")  # a path: its own error later


def test_the_wheel_carries_the_recipes_and_examples(tmp_path: Path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            str(REPO),
            "-w",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    (wheel,) = tmp_path.glob("meadow-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for recipe in ("demo", "demo_llm", "v1"):
        assert f"meadow/data/recipes/{recipe}.yaml" in names
    examples = {p.relative_to(REPO).as_posix() for p in (REPO / "examples").rglob("*") if p.is_file()}
    assert {f"meadow/data/{e}" for e in examples} <= names
