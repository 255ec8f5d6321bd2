"""pubmed_causal loader: sentence,label CSV -> causal-language classification records."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import pytest
from pydantic import ValidationError

from meadow.errors import InputError
from meadow.records import Record
from meadow.sources import Drop, get
from meadow.sources.pubmed_causal import PubmedCausalOptions, clean_sentence

CORRECTED_INSTRUCTION = (
    "Question: Is this describing a (1) direct causal relationship, (2) conditional causal relationship, "
    "(3) correlational relationship, or (0) no relationship?"
)
CORRECTED = {
    "0": "This describes no relationship.",
    "1": "This describes a direct causal relationship.",
    "2": "This describes a conditional causal relationship.",
    "3": "This describes a correlational relationship.",
}
MEDALPACA_INSTRUCTION = (
    "Question: Is this describing a (1) directly correlative relationship, (2) conditionally causative "
    "relationship, (3) causative relationship, or (0) no relationship."
)
# medAlpaca's answer for each upstream label, as found in medical_meadow_pubmed_causal.
MEDALPACA = {
    "0": "This is a directly correlative relationship",
    "1": "This no relationship.",
    "2": "This is a causative relationship",
    "3": "This is a conditionally causative relationship",
}


def run(paths: list[Path], **options) -> list:
    return list(get("pubmed_causal").load(paths, PubmedCausalOptions(**options)))


def records(items: list) -> list[Record]:
    return [it for it in items if isinstance(it, Record)]


def drops(items: list) -> Counter:
    return Counter(it.reason for it in items if isinstance(it, Drop))


def write_csv(path: Path, rows: list[list[str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["sentence", "label"])
        writer.writerows(rows)
    return path


def real_file(raw_fixtures: Path) -> Path:
    return raw_fixtures / "pubmed_causal" / "pubmed_causal_language_use.first75_per_label.csv"


def test_registered_defaults():
    spec = get("pubmed_causal")
    assert spec.produces == "records" and spec.license == "GPL-3.0"
    assert PubmedCausalOptions().framing == "corrected"
    with pytest.raises(ValidationError):
        PubmedCausalOptions(framing="other")


@pytest.mark.parametrize(
    ("framing", "instruction", "outputs"),
    [("corrected", CORRECTED_INSTRUCTION, CORRECTED), ("medalpaca", MEDALPACA_INSTRUCTION, MEDALPACA)],
)
def test_real_counts_and_outputs_per_label(raw_fixtures: Path, framing: str, instruction: str, outputs: dict):
    path = real_file(raw_fixtures)
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert Counter(r["label"] for r in rows) == Counter({"0": 75, "1": 75, "2": 75, "3": 75})

    items = run([path], framing=framing)
    recs = records(items)
    assert drops(items) == Counter() and len(recs) == len(rows) == 300
    assert [r.output for r in recs] == [outputs[row["label"]] for row in rows]
    assert [r.input for r in recs] == [clean_sentence(row["sentence"]) for row in rows]
    assert Counter(r.output for r in recs) == Counter({text: 75 for text in outputs.values()})
    assert all(r.instruction == instruction and r.meta["framing"] == framing for r in recs)
    assert [r.meta["label"] for r in recs] == [int(row["label"]) for row in rows]
    assert len({r.id for r in recs}) == 300


def test_real_exact_records(raw_fixtures: Path):
    path = real_file(raw_fixtures)
    corrected = records(run([path]))
    medalpaca = records(run([path], framing="medalpaca"))
    assert [r.id for r in corrected] == [r.id for r in medalpaca]  # the framing does not change ids
    # Upstream label 2 (conditional causal); medAlpaca answers "causative" for it.
    row = next(i for i, r in enumerate(corrected) if r.input.startswith("Thus, mammographic density"))
    assert corrected[row].input == (
        "Thus, mammographic density should possibly influence adjuvant therapy decisions in the  future."
    )
    assert corrected[row].output == "This describes a conditional causal relationship."
    assert medalpaca[row].output == "This is a causative relationship"
    assert corrected[row].meta["label_name"] == "conditional_causal"
    assert corrected[row].id.startswith("pubmed_causal:")
    assert len(corrected[row].id) == len("pubmed_causal:") + 16
    # The literal "\\xa0" escapes of the upstream file become plain spaces.
    assert any("6 months" in r.input for r in corrected)
    assert not any("\\x" in r.input or "\\u" in r.input for r in corrected)


def test_clean_sentence():
    assert clean_sentence(" at 6\\\\xa0months and 2\\u2005years\\xb0 ") == "at 6 months and 2 years°"


def test_duplicates_and_conflicts(tmp_path: Path):
    path = write_csv(
        tmp_path / "pubmed_causal_language_use.csv",
        [
            ["Statins reduce mortality.", "1"],
            [" Statins reduce mortality. ", "1"],
            ["Statins reduce mortality.", "3"],
            ["Statins may reduce mortality.", "2"],
        ],
    )
    items = run([path])
    assert [r.input for r in records(items)] == ["Statins reduce mortality.", "Statins may reduce mortality."]
    assert drops(items) == Counter({"duplicate_sentence": 1, "conflicting_label": 1})


def test_bad_rows_are_counted_drops(tmp_path: Path):
    path = write_csv(
        tmp_path / "pubmed_causal_language_use.csv",
        [
            ["Label out of range.", "4"],
            ["Label not a number.", "causal"],
            ["Label empty.", ""],
            ["   ", "0"],
            ["x" * 10_000_000, "0"],
            ["Smoking was associated with lower bone density.", "3"],
        ],
    )
    items = run([path])
    assert len(items) == 6 and len(records(items)) == 1
    assert drops(items) == Counter({"bad_label": 3, "empty_sentence": 1, "too_long_input": 1})
    first = items[0]
    assert isinstance(first, Drop) and first.malformed and first.where == f"{path}:2"


@pytest.mark.parametrize(
    ("content", "line", "message"),
    [
        (b"text,label\nA sentence.,0\n", 1, "missing column"),
        (b'sentence,label\nA sentence.,0\n"Cut off,1\n', 3, "ends inside a quoted field: truncated"),
        (b"sentence,label\nA sentence.,0\nBad \xc3\x28 byte.,1\n", 3, "invalid UTF-8"),
        (b"sentence,label\nA sentence.,0,extra\n", 2, "found 3"),
    ],
)
def test_unreadable_files_raise_input_error(tmp_path: Path, content: bytes, line: int, message: str):
    path = tmp_path / "pubmed_causal_language_use.csv"
    path.write_bytes(content)
    with pytest.raises(InputError, match=message) as err:
        run([path])
    assert err.value.path == str(path) and err.value.line == line


def test_examples(examples_dir: Path):
    paths = sorted((examples_dir / "pubmed_causal").glob("*.csv"))
    assert [p.name for p in paths] == ["pubmed_causal_language_use.csv"]
    items = run(paths)
    recs = records(items)
    assert {r.output for r in recs} == set(CORRECTED.values())
    assert drops(items) == Counter(
        {"bad_label": 1, "empty_sentence": 1, "duplicate_sentence": 1, "conflicting_label": 1}
    )
