"""The `raw_fixtures` fixture: skip with a reason where the real files are absent, fail under CI=true."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from meadow.cli import app
from meadow.sources import registry

HERE = Path(__file__).resolve().parent


def run_pytest(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    shutil.copy(HERE / "conftest.py", tmp_path / "conftest.py")
    (tmp_path / "test_uses_fixtures.py").write_text(
        "def test_it(raw_fixtures):\n    assert raw_fixtures.is_dir()\n"
    )
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", str(tmp_path)],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        cwd=tmp_path,
    )


@pytest.mark.parametrize(("ci", "outcome"), [("", "1 skipped"), ("true", "1 error")])
def test_missing_fixtures_skip_or_fail_under_ci(tmp_path, ci, outcome):
    res = run_pytest(tmp_path, {"MEADOW_FIXTURES": str(tmp_path / "absent"), "CI": ci})
    assert outcome in res.stdout, res.stdout
    assert "real upstream fixtures not found" in res.stdout


def test_present_fixtures_are_used(tmp_path):
    (tmp_path / "raw").mkdir()
    res = run_pytest(tmp_path, {"MEADOW_FIXTURES": str(tmp_path / "raw"), "CI": "true"})
    assert "1 passed" in res.stdout, res.stdout


def test_every_source_is_registered_and_listed():
    expected = {
        "anki",
        "chatdoctor",
        "cord19",
        "mediqa",
        "medqa",
        "mmlu",
        "openassistant",
        "pubmed_causal",
        "pubmed_health_advice",
        "stackexchange",
        "stackexchange_hf",
        "usmle",
        "wikidoc",
    }
    assert set(registry()) == expected
    assert {n for n, s in registry().items() if s.test_only} == {"usmle"}
    out = CliRunner().invoke(app, ["sources"]).output
    for name in expected:
        assert name in out


def test_the_registry_is_complete_whichever_loader_module_was_imported_first():
    code = (
        "import meadow.sources.mmlu\n"  # as meadow.eval does, before anything asks the registry
        "from meadow.sources import registry\n"
        "print(len(registry()))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == str(len(registry()))
