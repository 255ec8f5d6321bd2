"""End-to-end tests of `meadow build` on real fixture files (copied into tmp_path at test time)."""

import csv
import json
import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from meadow.build import build
from meadow.build.stats import SourceStats
from meadow.cli import app
from meadow.errors import MeadowError
from meadow.schemas.outputs import JSON_NAME, MANIFEST_NAME, PARQUET_NAME
from meadow.sources import Drop

CORD = "cord19/metadata.first150.csv"


def split_csv(src: Path, parts: dict[Path, slice], extra: dict[Path, int] | None = None) -> None:
    """Write slices of a CSV's rows (header kept) to new files; ``extra`` appends re-keyed copies."""
    with open(src, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    for path, sl in parts.items():
        chosen = body[sl]
        for k in range((extra or {}).get(path, 0)):
            row = list(body[k % len(body)])
            row[0] = f"new{k:05d}"
            row[3] = f"{row[3]} (new {k})"
            chosen = chosen + [row]
        with open(path, "w", newline="", encoding="utf-8") as f:
            csv.writer(f).writerows([header, *chosen])


def recipe(tmp_path: Path, body: str, name: str = "r.yaml") -> Path:
    p = tmp_path / name
    p.write_text(f"name: test_build\nseed: 7\noutput_dir: {tmp_path / 'out'}\n{body}")
    return p


def expected_cord_rows(path: Path) -> int:
    with open(path, newline="", encoding="utf-8") as f:
        return sum(1 for r in csv.DictReader(f) if r["abstract"].strip() and r["title"].strip())


def test_build_writes_medalpaca_json_parquet_manifest_and_card(tmp_path, raw_fixtures):
    src = raw_fixtures / CORD
    result = build(
        recipe(tmp_path, f"sources:\n  cord19:\n    loader: cord19\n    path: {src}\n"), progress=False
    )
    out = tmp_path / "out" / "test_build"
    assert result.out_dir == out
    rows = json.loads((out / JSON_NAME).read_text())
    assert len(rows) == expected_cord_rows(src) == result.records
    assert set(rows[0]) == {"instruction", "input", "output", "source", "id"}
    assert rows == sorted(rows, key=lambda r: r["id"])
    table = pq.read_table(out / PARQUET_NAME)
    assert table.column_names == ["instruction", "input", "output", "source", "id", "meta"]
    assert table.column("id").to_pylist() == [r["id"] for r in rows]
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    s = manifest["sources"]["cord19"]
    assert s["read"] == s["dropped_total"] + s["duplicates"] + s["unique"]
    assert s["sampled"] == s["unique"] == len(rows)
    assert s["dropped"].get("no_abstract", 0) == 150 - expected_cord_rows(src) - s["dropped"].get(
        "no_title", 0
    )
    assert s["inputs"][0]["sha256"] and s["inputs"][0]["bytes"] == src.stat().st_size
    assert manifest["outputs"][JSON_NAME]["records"] == len(rows)
    card = (out / "README.md").read_text()
    assert (
        card.startswith("---\n")
        and "merged_medical_meadow.parquet" in card
        and "Not for clinical use" in card
    )


def test_two_builds_are_byte_identical(tmp_path, raw_fixtures):
    body = f"sources:\n  cord19:\n    loader: cord19\n    path: {raw_fixtures / CORD}\n    n: 40\n"
    a = build(recipe(tmp_path, body), output_dir=tmp_path / "a", progress=False).out_dir
    b = build(recipe(tmp_path, body), output_dir=tmp_path / "b", progress=False).out_dir
    for name in (JSON_NAME, PARQUET_NAME, "README.md"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    assert len(json.loads((a / JSON_NAME).read_text())) == 40


def test_adding_rows_to_one_source_changes_no_sample_of_another(tmp_path, raw_fixtures):
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    body = (
        f"sources:\n  first:\n    loader: cord19\n    path: {a}\n    n: 20\n"
        f"  second:\n    loader: cord19\n    path: {b}\n    n: 15\n"
    )
    split_csv(raw_fixtures / CORD, {a: slice(0, 90), b: slice(90, 150)})
    before = json.loads((build(recipe(tmp_path, body), progress=False).out_dir / JSON_NAME).read_text())
    split_csv(raw_fixtures / CORD, {a: slice(0, 90), b: slice(90, 150)}, extra={a: 200})
    after = json.loads((build(recipe(tmp_path, body), progress=False).out_dir / JSON_NAME).read_text())

    second_before = [r for r in before if r["id"] in {x["id"] for x in before[20:]}]
    assert [r for r in after if r in second_before] == second_before  # second source untouched
    first_before = {r["id"] for r in before[:20]}
    first_after = {r["id"] for r in after[:20]}
    assert first_after != first_before
    assert all(i.startswith("cord19:new") for i in first_after - first_before)  # only new rows displaced old


def test_exact_duplicates_across_sources_are_counted(tmp_path, raw_fixtures):
    src = raw_fixtures / CORD
    entry = f"    loader: cord19\n    path: {src}\n"
    body = f"sources:\n  one:\n{entry}  two:\n{entry}"
    m = build(recipe(tmp_path, body), progress=False).manifest.to_json()
    n = expected_cord_rows(src)
    assert m["sources"]["one"]["sampled"] == n
    assert m["sources"]["two"]["duplicates"] == n and m["sources"]["two"]["duplicate_of"] == {"one": n}
    assert m["totals"]["records"] == n


def test_failed_build_leaves_previous_output_intact(tmp_path, raw_fixtures):
    good = tmp_path / "good.csv"
    split_csv(raw_fixtures / CORD, {good: slice(0, 150)})
    r = recipe(tmp_path, f"sources:\n  cord19:\n    loader: cord19\n    path: {good}\n")
    out = build(r, progress=False).out_dir
    snapshot = {p.name: p.read_bytes() for p in out.iterdir()}
    good.write_bytes(good.read_bytes()[: good.stat().st_size // 2] + b'\nx,"unterminated')
    with pytest.raises(MeadowError, match=r"good\.csv:\d+"):
        build(r, progress=False)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == snapshot
    assert [p.name for p in out.parent.iterdir()] == ["test_build"]  # no temp folder left behind


def test_missing_input_is_a_clear_error(tmp_path):
    r = recipe(tmp_path, f"sources:\n  cord19:\n    loader: cord19\n    path: {tmp_path}/nope/*.csv\n")
    with pytest.raises(MeadowError, match="source 'cord19': no file matches"):
        build(r, progress=False)


def test_strict_fails_on_malformed_row_and_default_counts_it(tmp_path, raw_fixtures):
    bad = tmp_path / "bad.csv"
    split_csv(raw_fixtures / CORD, {bad: slice(0, 10)})
    text = bad.read_text().splitlines()
    header = text[0].split(",")
    row = dict.fromkeys(header, "")
    row.update(cord_uid="nul00001", title="A title", abstract="bad \x00 byte")
    with open(bad, "a", newline="", encoding="utf-8") as f:
        csv.DictWriter(f, header).writerow(row)
    r = recipe(tmp_path, f"sources:\n  cord19:\n    loader: cord19\n    path: {bad}\n")
    m = build(r, progress=False).manifest.to_json()
    assert m["sources"]["cord19"]["dropped"]["invalid_record"] == 1
    assert "bad.csv:12" in m["sources"]["cord19"]["drop_examples"]["invalid_record"][0]
    with pytest.raises(MeadowError, match=r"bad\.csv:12.*NUL"):
        build(r, progress=False, strict=True)


def test_cli_build_and_errors(tmp_path, raw_fixtures):
    runner = CliRunner()
    r = recipe(tmp_path, f"sources:\n  cord19:\n    loader: cord19\n    path: {raw_fixtures / CORD}\n")
    res = runner.invoke(app, ["build", str(r), "--quiet"])
    assert res.exit_code == 0, res.output
    assert "wrote" in res.output
    res = runner.invoke(app, ["check", str(r)])
    assert res.exit_code == 0 and "ok cord19: loader cord19" in res.output and "valid" in res.output
    missing = recipe(
        tmp_path, f"sources:\n  gone:\n    loader: cord19\n    path: {tmp_path}/no.csv\n", "m.yaml"
    )
    res = runner.invoke(app, ["check", str(missing)])
    assert res.exit_code == 1 and "missing source 'gone'" in res.output and "1 of 1 sources" in res.output
    bad = recipe(tmp_path, "sources:\n  c:\n    loader: nope\n    path: x\n", name="bad.yaml")
    res = runner.invoke(app, ["build", str(bad)])
    assert res.exit_code == 1
    assert "unknown loader 'nope'" in res.output
    assert "Traceback" not in res.output
    res = runner.invoke(app, ["--version"])
    assert res.exit_code == 0 and res.output.startswith("meadow ")


def test_demo_recipe_builds_every_example(tmp_path, monkeypatch):
    repo = Path(__file__).resolve().parents[1]
    monkeypatch.chdir(repo)
    result = build(repo / "recipes/demo.yaml", output_dir=tmp_path, progress=False)
    m = result.manifest.to_json()
    assert result.records == m["totals"]["records"] > 50
    for name, s in m["sources"].items():
        assert s["read"] == s["dropped_total"] + s["duplicates"] + s["near_duplicates"] + s["unique"], name
        assert s["sampled"] > 0, name
    # the examples plant a record of each kind a step removes, so the demo shows every step at work
    # (README, "Quick start"): a leaked MedQA test question, an echo, an exact and a near duplicate
    chatdoctor, cord19 = m["sources"]["chatdoctor"], m["sources"]["cord19"]
    assert chatdoctor["contaminated"] == {"medqa_test": 1} and chatdoctor["dropped"]["contaminated"] == 1
    assert chatdoctor["dropped"]["filter_copies_question"] == 1
    assert chatdoctor["near_duplicate_of"] == {"chatdoctor": 1}
    assert cord19["duplicate_of"] == {"cord19": 1} and cord19["unique"] > cord19["sampled"] == cord19["n"]
    assert m["decontamination"]["benchmarks"]["medqa_test"]["hits"] == 1
    rows = json.loads((result.out_dir / JSON_NAME).read_text())
    assert {r["source"].split("/")[0] for r in rows} >= {"stackexchange", "cord19", "mmlu", "chatdoctor"}


def test_row_order_does_not_change_the_build(tmp_path, raw_fixtures):
    with open(raw_fixtures / CORD, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    outputs, examples = [], []
    for k, order in enumerate((rows[1:], rows[:0:-1])):
        src = tmp_path / f"in{k}.csv"
        with open(src, "w", newline="", encoding="utf-8") as f:
            csv.writer(f).writerows([rows[0], *order])
        body = f"sources:\n  cord19:\n    loader: cord19\n    path: {src}\n    n: 30\n"
        body += "    filters: {min_output_chars: 1500}\n"
        result = build(recipe(tmp_path, body, f"r{k}.yaml"), output_dir=tmp_path / f"out{k}", progress=False)
        outputs.append((result.out_dir / JSON_NAME).read_bytes())
        examples.append(result.manifest.sources["cord19"].drop_examples["filter_length"])
    assert outputs[0] == outputs[1]
    # the manifest's examples of a reason are its lowest-ranked records, not the first ones read
    assert examples[0] == examples[1] and len(examples[0]) == 5


def test_source_stats_add_up_in_any_order():
    def part(ids: list[str]) -> SourceStats:
        st = SourceStats(loader="x", n="all", seed=3)
        for i in ids:
            st.read += 1
            st.drop(Drop("no_abstract", f"f.csv:{i}"))
        return st

    a, b = part([str(i) for i in range(8)]), part([str(i) for i in range(8, 20)])
    ab, ba = a + b, b + a
    assert ab.read == ba.read == 20 and ab.dropped == ba.dropped == {"no_abstract": 20}
    assert ab.drop_examples == ba.drop_examples == part([str(i) for i in range(20)]).drop_examples
    assert SourceStats.from_json(json.loads(json.dumps(ab.to_json()))) == ab


def test_a_source_whose_loader_gives_nothing_stops_the_build_unless_allowed(tmp_path, raw_fixtures):
    good = tmp_path / "good.csv"
    split_csv(raw_fixtures / CORD, {good: slice(0, 40)})
    nothing = tmp_path / "nothing.csv"  # rows, but none with an abstract: the loader drops them all
    with open(raw_fixtures / CORD, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    abstract = rows[0].index("abstract")
    with open(nothing, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(
            [rows[0], *([c if i != abstract else "" for i, c in enumerate(r)] for r in rows[1:4])]
        )
    header_only = tmp_path / "header.csv"
    header_only.write_text(",".join(rows[0]) + "\n", encoding="utf-8")
    first = build(recipe(tmp_path, f"sources:\n  a: {{loader: cord19, path: '{good}'}}\n"), progress=False)
    before = (first.out_dir / JSON_NAME).read_bytes()
    for path, why in (
        (nothing, "the loader dropped all 3 rows it read (no_abstract 3)"),
        (header_only, "its files hold no row"),
    ):
        body = f"sources:\n  a: {{loader: cord19, path: '{good}'}}\n  b: {{loader: cord19, path: '{path}'}}\n"
        with pytest.raises(
            MeadowError, match=rf"source 'b' \(.*{path.name}\): {re.escape(why)}.*allow_empty: true"
        ):
            build(recipe(tmp_path, body), progress=False)
        assert (first.out_dir / JSON_NAME).read_bytes() == before  # the last good build is intact
        allowed = body.replace(f"path: '{path}'", f"path: '{path}', allow_empty: true")
        result = build(recipe(tmp_path, allowed), progress=False)
        assert result.manifest.sources["b"].sampled == 0 and result.records == first.records
