"""Fixtures for the training tests: a few records of the demo build (tests/conftest.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


@pytest.fixture()
def few_records(demo_build: Path, tmp_path: Path) -> Path:
    """The first 6 records of the demo build, as a medAlpaca-format JSON file."""
    records = json.loads((demo_build / "merged_medical_meadow.json").read_text())[:6]
    path = tmp_path / "few.json"
    path.write_text(json.dumps(records))
    return path
