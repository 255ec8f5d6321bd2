"""`meadow diff`: records added, removed and changed per source, matched by id whatever the row
order; drop reasons that moved; recipe and input changes; a tampered build is an error."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from meadow.build import build
from meadow.cli import app
from meadow.errors import MeadowError
from meadow.stats.diff import diff_builds

REPO = Path(__file__).resolve().parents[2]
CORD = REPO / "examples/cord19/metadata.csv"
MMLU = REPO / "examples/mmlu/dev"


def recipe(tmp: Path, cord: Path, n: int = 6, extra: str = "") -> Path:
    path = tmp / "r.yaml"
    path.write_text(
        f"name: d\nseed: 3\nsources:\n  cord19: {{loader: cord19, path: '{cord}', n: {n}}}\n"
        f"  mmlu: {{loader: mmlu, path: '{MMLU}/*.csv'}}\n{extra}",
        encoding="utf-8",
    )
    return path


def rows_of(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def write_rows(path: Path, rows: list[list[str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)
    return path


def test_the_same_build_reordered_is_no_difference(tmp_path: Path):
    rows = rows_of(CORD)
    reversed_csv = write_rows(tmp_path / "rev.csv", [rows[0], *rows[:0:-1]])
    a = build(recipe(tmp_path, CORD), output_dir=tmp_path / "a", progress=False).out_dir
    b = build(recipe(tmp_path, reversed_csv), output_dir=tmp_path / "b", progress=False).out_dir
    d = diff_builds(a, b)
    assert d.same is False  # the input file's sha256 differs (its rows moved) ...
    cord = next(s for s in d.sources if s.source == "cord19")
    assert cord.inputs_changed and (cord.added, cord.removed, cord.changed) == (0, 0, 0)  # ... no record
    assert diff_builds(a, a).same


def test_added_removed_and_changed_records_and_moved_drops(tmp_path: Path):
    rows = rows_of(CORD)
    header, body = rows[0], rows[1:]
    abstract = header.index("abstract")
    a = build(recipe(tmp_path, CORD, n=100), output_dir=tmp_path / "a", progress=False).out_dir
    kept = json.loads((a / "merged_medical_meadow.json").read_text())
    first = next(r for r in kept if r["source"].startswith("cord19"))["id"].split(":", 1)[1]
    edited = [list(r) for r in body]
    for r in edited:
        if r[0] == first:
            r[abstract] = r[abstract] + " An added sentence."
    edited = [r for r in edited if r[0] != body[-1][0] or r[0] == first]  # one row gone
    edited.append([f"new{i}" if i == 0 else c for i, c in enumerate(body[0])])  # one new row
    for r in [r for r in edited if r[0] != first][1:4]:
        r[abstract] = ""  # rows without an abstract: loader drops
    changed_csv = write_rows(tmp_path / "changed.csv", [header, *edited])
    b = build(recipe(tmp_path, changed_csv, n=100), output_dir=tmp_path / "b", progress=False).out_dir
    cord = next(s for s in diff_builds(a, b).sources if s.source == "cord19")
    assert cord.changed >= 1 and f"cord19:{first}" in cord.examples["changed"]
    assert cord.added >= 1 and cord.removed >= 1 and cord.inputs_changed
    assert cord.drops and all(x != y for x, y in cord.drops.values())


def test_a_new_source_a_recipe_change_and_the_cli(tmp_path: Path):
    a = build(recipe(tmp_path, CORD), output_dir=tmp_path / "a", progress=False).out_dir
    extra = f"  mmlu2: {{loader: mmlu, path: '{MMLU}/*.csv', options: {{}}}}\n"
    b = build(recipe(tmp_path, CORD, n=4, extra=extra), output_dir=tmp_path / "b", progress=False).out_dir
    d = diff_builds(a, b)
    assert d.recipe_changed
    statuses = {s.source: s.status for s in d.sources}
    assert statuses == {"cord19": "both", "mmlu": "both", "mmlu2": "added"}
    cord = next(s for s in d.sources if s.source == "cord19")
    assert cord.removed == 2 and cord.kept == (6, 4)
    res = CliRunner().invoke(app, ["diff", str(a), str(b), "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["sources"]["mmlu2"]["status"] == "added" and data["same"] is False
    res = CliRunner().invoke(app, ["diff", str(a), str(b)])
    assert res.exit_code == 0 and "cord19: removed:" in res.stdout and "the recipe differs" in res.stdout


def test_a_tampered_or_missing_build_is_an_error(tmp_path: Path):
    a = build(recipe(tmp_path, CORD), output_dir=tmp_path / "a", progress=False).out_dir
    b = tmp_path / "b"
    shutil.copytree(a, b)
    with open(b / "merged_medical_meadow.parquet", "ab") as f:
        f.write(b"x")
    with pytest.raises(MeadowError, match="does not match manifest.json"):
        diff_builds(a, b)
    with pytest.raises(MeadowError, match="no such folder"):
        diff_builds(a, tmp_path / "nowhere")
    res = CliRunner().invoke(app, ["diff", str(a), str(tmp_path / "nowhere")])
    assert res.exit_code == 1 and "Traceback" not in res.output
