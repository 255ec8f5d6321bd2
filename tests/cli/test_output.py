"""Results go to stdout (unwrapped when piped), diagnostics to stderr; --json where a script wants data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from meadow.cli import app
from meadow.hub.fetch import FetchReport, Item

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()


def long_source(tmp_path: Path) -> tuple[Path, Path]:
    """A recipe whose one source lives in a folder with a path far longer than 80 columns."""
    folder = tmp_path / ("a_rather_long_folder_name_" * 4) / "cord19"
    folder.mkdir(parents=True)
    (folder / "metadata.csv").write_text("x\n")
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"name: t\nsources:\n  c:\n    loader: cord19\n    path: {folder}/metadata.csv\n")
    return recipe, folder / "metadata.csv"


def test_check_prints_its_results_on_stdout_one_line_each(tmp_path):
    recipe, data = long_source(tmp_path)
    res = runner.invoke(app, ["check", str(recipe)])
    assert res.exit_code == 0, res.output
    assert res.stderr == ""
    assert res.stdout.splitlines() == [
        f"ok c: loader cord19, n=all: {data}",
        f"{recipe}: valid, every one of its sources has its input files",
    ]


def test_check_json_lists_the_files_and_a_missing_source(tmp_path):
    recipe, data = long_source(tmp_path)
    recipe.write_text(recipe.read_text() + f"  gone:\n    loader: cord19\n    path: {tmp_path}/no.csv\n")
    res = runner.invoke(app, ["check", str(recipe), "--json"])
    assert res.exit_code == 1
    report = json.loads(res.stdout)
    assert report["valid"] is False and report["benchmarks"] == {}
    assert report["sources"]["c"] == {"loader": "cord19", "n": "all", "missing": None, "files": [str(data)]}
    gone = report["sources"]["gone"]
    assert gone["files"] == [] and "no file matches" in gone["missing"]
    assert "error:" in res.stderr and "1 of 2 sources have no input file" in res.stderr


def test_sources_json():
    res = runner.invoke(app, ["sources", "--json"])
    assert res.exit_code == 0 and res.stderr == ""
    loaders = {entry["name"]: entry for entry in json.loads(res.stdout)}
    assert loaders["cord19"]["produces"] == "records" and loaders["cord19"]["license"]
    assert loaders["usmle"]["test_only"] is True


@pytest.fixture
def dry_run_report(tmp_path, monkeypatch) -> Path:
    """`meadow fetch` returning a dry-run report: one file to download, one manual, one warning."""
    recipe, _ = long_source(tmp_path)
    raw = tmp_path / "raw"
    report = FetchReport(raw, raw / "sources.lock", dry_run=True, warnings=["HF_TOKEN is not set"])
    report.items = [
        Item("c", None, raw / "c" / "f.csv", "c/f.csv", status="would download", size=2048),
        Item("c", None, raw / "c" / "g.csv", "c/g.csv", status="manual", detail="get it from example.org"),
    ]
    monkeypatch.setattr("meadow.hub.fetch.fetch", lambda *a, **k: report)
    return recipe


def test_fetch_dry_run_plan_on_stdout_notes_on_stderr(dry_run_report):
    res = runner.invoke(app, ["fetch", str(dry_run_report), "--dry-run"])
    assert res.exit_code == 0, res.output
    assert "would download" in res.stdout and "1 file(s) to download, 2.0 KiB" in res.stdout
    assert "HF_TOKEN is not set" in res.stderr and "get it from example.org" in res.stderr
    assert "HF_TOKEN" not in res.stdout


def test_fetch_dry_run_json(dry_run_report, tmp_path):
    res = runner.invoke(app, ["fetch", str(dry_run_report), "--dry-run", "--json"])
    assert res.exit_code == 0, res.output
    plan = json.loads(res.stdout)
    assert plan["dry_run"] is True and plan["warnings"] == ["HF_TOKEN is not set"]
    assert plan["download"] == {"files": 1, "bytes": 2048, "unknown_sizes": 0}
    assert [(i["file"], i["status"], i["size"]) for i in plan["items"]] == [
        ("f.csv", "would download", 2048),
        ("g.csv", "manual", None),
    ]
    assert plan["items"][0]["path"] == str(tmp_path / "raw" / "c" / "f.csv")


@pytest.fixture(scope="module")
def demo_build(tmp_path_factory) -> tuple[Path, CliRunner]:
    out = tmp_path_factory.mktemp("out")
    cwd = Path.cwd()
    os.chdir(REPO)
    try:
        res = runner.invoke(app, ["build", "recipes/demo.yaml", "-o", str(out)])
    finally:
        os.chdir(cwd)
    return out / "demo", res


def test_build_summary_on_stdout(demo_build):
    out, res = demo_build
    assert res.exit_code == 0, res.output
    assert res.stderr == ""
    assert "meadow build" in res.stdout and "dropped rows by reason" in res.stdout
    assert res.stdout.splitlines()[-1] == f"wrote 78 records to {out}"


def test_build_json_is_the_manifest(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    res = runner.invoke(app, ["build", "recipes/demo.yaml", "-o", str(tmp_path), "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["out_dir"] == str(tmp_path / "demo") and data["records"] == 78
    assert data["manifest"] == json.loads((tmp_path / "demo" / "manifest.json").read_text())


def test_stats_says_where_it_wrote_on_stdout(demo_build, tmp_path):
    out, _ = demo_build
    res = runner.invoke(app, ["stats", str(out), "-t", "whitespace", "-q", "-o", str(tmp_path / "r")])
    assert res.exit_code == 0, res.output
    assert res.stdout.startswith(f"wrote {tmp_path / 'r' / 'index.html'}") and res.stderr == ""


def test_piped_log_is_plain_lines_on_stderr(tmp_path):
    """Through a pipe: the log on stderr one plain line per message; stdout only the result."""
    cmd = [sys.executable, "-m", "meadow.cli", "-v", "build", "recipes/demo.yaml", "-o", str(tmp_path), "-q"]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"wrote 78 records to {tmp_path / 'demo'}\n"
    debug = [line for line in proc.stderr.splitlines() if line.startswith("DEBUG")]
    assert "DEBUG    cord19: read 14, kept 8" in debug


def test_the_openai_clients_request_lines_are_quiet_unless_verbose():
    # The openai client logs a line per HTTP request through its HTTP library (httpx2 for openai 3):
    # 44,556 INFO lines, and about 30 s of CPU, in a cold v1 build before its logger was quieted.
    import logging

    import openai._base_client as base

    from meadow.cli.console import setup_logging

    http = next(getattr(base, m) for m in ("httpx2", "httpx") if hasattr(base, m))
    logger = logging.getLogger(http.__name__.split(".")[0])
    root = logging.getLogger()
    before = logger.level, root.level
    try:
        setup_logging(verbose=False)
        root.setLevel(logging.INFO)  # as the CLI logs (under pytest, basicConfig leaves the root alone)
        assert not logger.isEnabledFor(logging.INFO)
    finally:
        logger.setLevel(before[0])
        root.setLevel(before[1])
