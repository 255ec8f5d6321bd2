"""`meadow check` on a recipe whose inputs are missing: one line each, what to do said once."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from meadow.cli import app

runner = CliRunner()
HINT = "run `meadow fetch` on the recipe"


def recipe(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(
        "name: t\nsources:\n"
        "  a: {loader: cord19, path: data/raw/a/metadata.csv}\n"
        "  b: {loader: chatdoctor, path: data/raw/b/*.json}\n"
        "benchmarks:\n  m: {kind: mmlu, path: data/raw/m/*.csv}\n"
    )
    return path


def test_missing_inputs_one_line_each_and_the_hint_once(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = runner.invoke(app, ["check", str(recipe(tmp_path))])
    assert res.exit_code == 1
    assert res.stdout.splitlines() == [
        "missing source 'a': no file matches 'data/raw/a/metadata.csv'",
        "missing source 'b': no file matches 'data/raw/b/*.json'",
        "missing benchmark 'm': no file matches 'data/raw/m/*.csv'",
    ]
    assert res.output.count(HINT) == 1
    assert "3 of 3 sources and benchmarks have no input file; " + HINT in res.stderr
    assert "DATA_DESCRIPTION.md says where each source comes from" in res.stderr


def test_json_gives_each_missing_input_and_the_hints(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = runner.invoke(app, ["check", str(recipe(tmp_path)), "--json"])
    assert res.exit_code == 1
    data = json.loads(res.stdout)
    assert data["valid"] is False
    assert data["sources"]["a"]["missing"] == "source 'a': no file matches 'data/raw/a/metadata.csv'"
    assert data["benchmarks"]["m"] == {
        "benchmark": "mmlu",
        "missing": "benchmark 'm': no file matches 'data/raw/m/*.csv'",
        "files": [],
    }
    # sources and benchmarks differ in where to look by hand: each distinct hint once
    assert len(data["hints"]) == 2 and all(h.startswith(HINT) for h in data["hints"])
