"""Fixtures for the training tests: the demo build, and a few of its records."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def demo_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """recipes/demo.yaml built once per session (paths in the recipe are relative to the repo)."""
    from meadow.build import build

    out = tmp_path_factory.mktemp("demo-build")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(REPO)
        result = build("recipes/demo.yaml", output_dir=out, progress=False)
    return result.out_dir


@pytest.fixture()
def few_records(demo_build: Path, tmp_path: Path) -> Path:
    """The first 6 records of the demo build, as a medAlpaca-format JSON file."""
    records = json.loads((demo_build / "merged_medical_meadow.json").read_text())[:6]
    path = tmp_path / "few.json"
    path.write_text(json.dumps(records))
    return path
