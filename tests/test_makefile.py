"""The Makefile's installs: `make install` and `make demo` install what the commands need, `make test`
adds the test extras, and torch stays pinned before anything that depends on it (`make -n`: nothing
is run)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TORCH = "torch==2.13.0"

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def planned(target: str, venv: Path) -> list[str]:
    """The commands ``make TARGET`` runs in a fresh virtual environment ``venv``."""
    # run from `make test` itself (CI), a nested make would print "Entering directory" lines
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    cmd = ["make", "--no-print-directory", "-n", "-B", target, f"VENV={venv}"]
    run = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=True, env=env)
    return run.stdout.splitlines()


def installs(lines: list[str]) -> list[str]:
    return [line.split("pip install", 1)[1].strip() for line in lines if "pip install" in line]


@pytest.mark.parametrize("target", ["install", "demo"])
def test_install_and_demo_install_no_test_extras(tmp_path, target):
    lines = planned(target, tmp_path / "venv")
    pips = installs(lines)
    assert pips[0] == TORCH  # first, alone: nothing that needs torch may pick another one
    assert all(TORCH in p for p in pips if p.startswith("-e"))
    assert "-e . torch==2.13.0" in pips
    assert not [p for p in pips if "[" in p]  # no extras: pytest, lm-eval, ray, playwright are tests'
    if target == "demo":
        assert lines[-1].endswith("meadow build recipes/demo.yaml")


def test_test_adds_the_test_extras_with_torch_still_pinned(tmp_path):
    lines = planned("test", tmp_path / "venv")
    pips = installs(lines)
    assert pips[0] == TORCH
    assert f"-e '.[dev,llama,kaggle]' {TORCH}" in pips
    assert lines[-1].endswith("python -m pytest")
    assert any(line.endswith("lint-imports") for line in lines)
