"""Ctrl-C during a build or a conversion: exit 130 and say what is intact and how to resume."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from meadow.cli import app

runner = CliRunner()


def interrupt(*args, **kwargs):
    raise KeyboardInterrupt


@pytest.mark.parametrize(
    ("flags", "shards"), [([], False), (["--workers", "2"], True), (["--executor", "local"], True)]
)
def test_interrupted_build_says_the_last_build_is_intact_and_a_rerun_resumes(monkeypatch, flags, shards):
    monkeypatch.setattr("meadow.build.build", interrupt)
    res = runner.invoke(app, ["build", "r.yaml", "-q", *flags])
    assert res.exit_code == 130 and res.stdout == ""
    assert "interrupted: the previous build, if any, is intact" in res.stderr
    assert "Run the same command again to resume" in res.stderr and "answer cache" in res.stderr
    assert ("the shards already read are reused" in res.stderr) is shards


def test_interrupted_convert_wrote_nothing_and_resumes_from_the_cache(monkeypatch):
    monkeypatch.setattr("meadow.build.convert.convert", interrupt)
    res = runner.invoke(app, ["convert", "r.yaml"])
    assert res.exit_code == 130
    assert "interrupted: nothing was written. Run the same command again to resume" in res.stderr
