"""pubmed_health_advice loader: the three annotation CSVs -> strong/weak/no advice records."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import pytest

from meadow.errors import InputError
from meadow.records import Record
from meadow.sources import Drop, get
from meadow.sources.pubmed_health_advice import INSTRUCTION, HealthAdviceOptions

DISCUSSION = ["label", "pmid", "sentence", "rel_loc", "citation_mentioned", "past_tense"]
EXPECTED_OUTPUT = {"0": "This is no advice", "1": "This is a weak advice", "2": "This is a strong advice"}


def run(paths: list[Path], **options) -> list:
    return list(get("pubmed_health_advice").load(paths, HealthAdviceOptions(**options)))


def records(items: list) -> list[Record]:
    return [it for it in items if isinstance(it, Record)]


def drops(items: list) -> Counter:
    return Counter(it.reason for it in items if isinstance(it, Drop))


def read_dicts(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def write_csv(path: Path, rows: list[list[str]], header: list[str] = DISCUSSION) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    return path


def test_registered_defaults():
    spec = get("pubmed_health_advice")
    assert spec.produces == "records" and "2021" in spec.citation
    assert HealthAdviceOptions().sections == ["structured_abstract", "unstructured_abstract", "discussion"]
    assert INSTRUCTION == "Question: is this a 2) strong advice, 1) weak advice 0) no advice?"


def test_real_files(raw_fixtures: Path):
    paths = sorted((raw_fixtures / "pubmed_health_advice").glob("*.csv"))
    assert len(paths) == 3
    items = run(paths)
    recs = records(items)
    assert drops(items) == Counter()
    expected_rows = {p.name: read_dicts(p) for p in paths}
    assert len(items) == sum(len(rows) for rows in expected_rows.values()) == 900
    for name, rows in expected_rows.items():
        mine = [r for r in recs if r.meta["file"] == name]
        section = name.split(".")[0].removeprefix("annotations_")
        assert [r.input for r in mine] == [row["sentence"].strip() for row in rows]
        assert [r.output for r in mine] == [EXPECTED_OUTPUT[row["label"]] for row in rows]
        assert [r.meta["pmid"] for r in mine] == [row["pmid"] for row in rows]
        assert {r.meta["section"] for r in mine} == {section}
        assert Counter(r.meta["label"] for r in mine) == Counter(int(row["label"]) for row in rows)
    # Label mix of these real slices (first 300 rows of each file).
    assert Counter(r.output for r in recs) == Counter(
        {"This is no advice": 799, "This is a weak advice": 59, "This is a strong advice": 42}
    )
    assert all(r.instruction == INSTRUCTION and r.source == "pubmed_health_advice" for r in recs)
    assert len({r.id for r in recs}) == len(recs)
    structured = [r for r in recs if r.meta["section"] == "structured_abstract"]
    assert structured[0].meta["design"] == "Cross-Sectional"


def test_real_exact_record(raw_fixtures: Path):
    path = raw_fixtures / "pubmed_health_advice" / "annotations_discussion.first300.csv"
    first = records(run([path]))[0]
    assert first.input == "Chronic infection with the HBV is associated with an increased risk of LC and HCC."
    assert first.output == "This is no advice"
    assert first.id.startswith("pubmed_health_advice:26538132:") and len(first.id.rsplit(":", 1)[1]) == 16
    assert first.meta["pmid"] == "26538132" and first.meta["section"] == "discussion"
    assert first.meta["label"] == 0 and first.meta["label_name"] == "no_advice"


def test_sections_filter(raw_fixtures: Path):
    paths = sorted((raw_fixtures / "pubmed_health_advice").glob("*.csv"))
    items = run(paths, sections=["discussion"])
    assert len(records(items)) == 300
    assert drops(items) == Counter({"section_not_selected": 600})


def test_duplicates_and_conflicts(tmp_path: Path):
    path = write_csv(
        tmp_path / "annotations_discussion.csv",
        [
            ["2", "111", "Patients should stop smoking. ", "0.5", "0", "0"],
            ["2", "111", "Patients should stop smoking.", "0.6", "0", "0"],
            ["1", "111", "Patients should stop smoking.", "0.7", "0", "0"],
            ["2", "222", "Patients should stop smoking.", "0.5", "0", "0"],  # another paper: kept
        ],
    )
    items = run([path])
    assert [r.meta["pmid"] for r in records(items)] == ["111", "222"]
    assert drops(items) == Counter({"duplicate_sentence": 1, "conflicting_label": 1})


def test_section_from_columns(tmp_path: Path):
    renamed = write_csv(
        tmp_path / "advice.csv",
        [["1", "5", "Clinicians may consider screening.", "Cohort"]],
        header=["label", "pmid", "sentence", "design"],
    )
    assert records(run([renamed]))[0].meta["section"] == "structured_abstract"
    unknown = write_csv(tmp_path / "other.csv", [["1", "5", "A."]], header=["label", "pmid", "sentence"])
    with pytest.raises(InputError, match="cannot tell the section") as err:
        run([unknown])
    assert err.value.path == str(unknown)


def test_bad_rows_are_counted_drops(tmp_path: Path):
    path = write_csv(
        tmp_path / "annotations_discussion.csv",
        [
            ["3", "1", "Label out of range.", "0", "0", "0"],
            ["strong", "2", "Label not a number.", "0", "0", "0"],
            ["1", "PMC7", "Pmid not a number.", "0", "0", "0"],
            ["0", "4", "   ", "0", "0", "0"],
            ["0", "5", "x" * 10_000_000, "0", "0", "0"],
            ["2", "6", "Women should be offered screening.", "0", "0", "0"],
        ],
    )
    items = run([path])
    assert len(items) == 6 and len(records(items)) == 1
    assert drops(items) == Counter({"bad_label": 2, "bad_pmid": 1, "empty_sentence": 1, "too_long_input": 1})
    assert all(d.malformed for d in items if isinstance(d, Drop) and d.reason.startswith("bad_"))
    assert next(d for d in items if isinstance(d, Drop)).where == f"{path}:2"


@pytest.mark.parametrize(
    ("content", "line", "message"),
    [
        (b"pmid,sentence\n1,A sentence.\n", 1, "missing column"),
        (b'label,pmid,sentence,rel_loc\n0,1,A sentence.,0.1\n0,2,"Cut off,0.2\n', 3, "truncated"),
        (b"label,pmid,sentence,rel_loc\n0,1,A sentence.,0.1\n0,2,B\xe9ad,0.2\n", 3, "invalid UTF-8"),
        (b"label,pmid,sentence,rel_loc\n0,1,A sentence.\n", 2, "found 3"),
        (b"", None, "empty file"),  # the file as a whole: no line to name
    ],
)
def test_unreadable_files_raise_input_error(tmp_path: Path, content: bytes, line: int, message: str):
    path = tmp_path / "annotations_unstructured_abstract.csv"
    path.write_bytes(content)
    with pytest.raises(InputError, match=message) as err:
        run([path])
    assert err.value.path == str(path) and err.value.line == line


def test_examples(examples_dir: Path):
    paths = sorted((examples_dir / "pubmed_health_advice").glob("*.csv"))
    assert [p.name for p in paths] == ["annotations_discussion.csv"]
    items = run(paths)
    recs = records(items)
    assert {r.output for r in recs} == set(EXPECTED_OUTPUT.values())
    assert drops(items) == Counter(
        {"bad_label": 1, "bad_pmid": 1, "empty_sentence": 1, "duplicate_sentence": 1, "conflicting_label": 1}
    )
    assert drops(run(paths, sections=["structured_abstract"]))["section_not_selected"] == len(items)
