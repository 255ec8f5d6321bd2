"""mmlu loader: MMLU headerless CSV files -> answer-the-question records."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import pytest
from pydantic import ValidationError

from meadow.errors import InputError
from meadow.records import Record
from meadow.sources import Drop, get
from meadow.sources.mmlu import INSTRUCTION, MEDICAL_SUBJECTS, MmluOptions

QUESTION = ["Which nerve innervates the diaphragm?", "Vagus", "Phrenic", "Hypoglossal", "Accessory", "B"]


def run(paths: list[Path], **options) -> list:
    return list(get("mmlu").load(paths, MmluOptions(**options)))


def records(items: list) -> list[Record]:
    return [it for it in items if isinstance(it, Record)]


def drops(items: list) -> Counter:
    return Counter(it.reason for it in items if isinstance(it, Drop))


def read_rows(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def write_rows(path: Path, rows: list[list[str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        csv.writer(f, lineterminator="\n").writerows(rows)
    return path


def real_files(raw_fixtures: Path) -> list[Path]:
    return sorted((raw_fixtures / "mmlu").glob("*/*.csv"))


def test_registered_defaults():
    spec = get("mmlu")
    assert spec.produces == "records" and spec.license == "MIT"
    options = MmluOptions()
    assert options.subjects == list(MEDICAL_SUBJECTS) and options.splits == ["dev", "val"]
    assert options.allow_test is False


def test_real_dev_and_val_counts_per_subject(raw_fixtures: Path):
    paths = real_files(raw_fixtures)
    assert len(paths) == 12
    expected = Counter()
    for path in paths:
        subject, split = path.stem.rsplit("_", 1)
        expected[(subject, split)] += len(read_rows(path))
    # The whole upstream files: 5 dev rows per subject, val 14/29/16/22/11/31.
    assert {s: n for (s, sp), n in expected.items() if sp == "val"} == {
        "anatomy": 14,
        "clinical_knowledge": 29,
        "college_biology": 16,
        "college_medicine": 22,
        "medical_genetics": 11,
        "professional_medicine": 31,
    }

    items = run(paths)
    recs = records(items)
    assert len(items) == sum(expected.values()) == 153
    assert drops(items) == Counter()
    got = Counter((r.meta["subject"], r.meta["split"]) for r in recs)
    assert got == expected
    assert all(r.source == f"mmlu/{r.meta['subject']}" for r in recs)
    assert all(r.id.startswith(f"{r.source}:{r.meta['split']}:") for r in recs)
    assert len({r.id for r in recs}) == len(recs)
    # Every output is the letter and text of the option the CSV marks correct.
    for path in paths:
        rows = read_rows(path)
        mine = [r for r in recs if r.meta["file"] == path.name]
        assert [r.output for r in mine] == [f"{row[5]}: {row['ABCD'.index(row[5]) + 1]}" for row in rows]


def test_real_exact_record(raw_fixtures: Path):
    recs = records(run([raw_fixtures / "mmlu" / "dev" / "anatomy_dev.csv"]))
    first = recs[0]
    assert first.instruction == INSTRUCTION == "Answer the following multiple choice question."
    assert first.input == (
        "What is the embryological origin of the hyoid bone?\n"
        "A: The first pharyngeal arch\n"
        "B: The first and second pharyngeal arches\n"
        "C: The second pharyngeal arch\n"
        "D: The second and third pharyngeal arches"
    )
    assert first.output == "D: The second and third pharyngeal arches"
    assert first.source == "mmlu/anatomy"
    assert first.id.startswith("mmlu/anatomy:dev:") and len(first.id) == len("mmlu/anatomy:dev:") + 16
    assert first.meta == {
        "subject": "anatomy",
        "split": "dev",
        "answer": "D",
        "file": "anatomy_dev.csv",
        "license": "MIT",
        "url": "https://github.com/hendrycks/test",
    }


def test_subject_and_split_filters(raw_fixtures: Path):
    paths = real_files(raw_fixtures)
    sizes = {p.name: len(read_rows(p)) for p in paths}
    items = run(paths, subjects=["anatomy"])
    assert len(records(items)) == sizes["anatomy_dev.csv"] + sizes["anatomy_val.csv"]
    assert drops(items) == Counter({"subject_not_selected": sum(sizes.values()) - len(records(items))})

    items = run(paths, splits=["dev"])
    assert len(records(items)) == 30
    assert drops(items) == Counter({"split_not_selected": sum(n for f, n in sizes.items() if "_val" in f)})


def test_test_split_is_dropped_unless_allowed(tmp_path: Path):
    path = write_rows(tmp_path / "test" / "anatomy_test.csv", [QUESTION, [*QUESTION[:5], "C"]])
    items = run([path])
    assert drops(items) == Counter({"test_split": 2}) and not records(items)
    assert all(not d.malformed and d.where.startswith(str(path)) for d in items)

    assert drops(run([path], allow_test=True)) == Counter({"test_split": 2})  # "test" not in splits
    with pytest.raises(ValidationError, match="allow_test"):
        MmluOptions(splits=["dev", "test"])

    recs = records(run([path], splits=["test"], allow_test=True))
    assert [r.output for r in recs] == ["B: Phrenic", "C: Hypoglossal"]
    assert all(r.id.startswith("mmlu/anatomy:test:") and r.meta["split"] == "test" for r in recs)


def test_auxiliary_train_and_file_names(tmp_path: Path):
    aux = write_rows(tmp_path / "auxiliary_train" / "race.csv", [QUESTION])
    assert drops(run([aux])) == Counter({"split_not_selected": 1})

    bad = write_rows(tmp_path / "anatomy.csv", [QUESTION])
    with pytest.raises(InputError, match="anatomy.csv: cannot tell subject and split"):
        run([bad])
    with pytest.raises(ValidationError, match="unknown MMLU subject"):
        MmluOptions(subjects=["anatomyy"])


def test_bad_rows_are_counted_drops(tmp_path: Path):
    path = write_rows(
        tmp_path / "val" / "anatomy_val.csv",
        [
            QUESTION,
            [*QUESTION[:5], "E"],
            ["  ", *QUESTION[1:]],
            [QUESTION[0], "x" * 10_000_000, *QUESTION[2:]],
            [f"{QUESTION[0]}\x00", *QUESTION[1:]],
        ],
    )
    items = run([path])
    assert len(items) == 5 and len(records(items)) == 1
    assert drops(items) == Counter(
        {"bad_answer": 1, "empty_question": 1, "too_long_input": 1, "invalid_record": 1}
    )
    bad = next(d for d in items if isinstance(d, Drop) and d.reason == "bad_answer")
    assert bad.malformed and bad.where == f"{path}:2"


@pytest.mark.parametrize(
    ("content", "line", "message"),
    [
        (b'Q1,a,b,c,d,A\n"Q2 is cut off,a,b\n', 2, "truncated"),  # truncated quoted field
        (b"Q1,a,b,c,d,A\nQ2,a,b,c,d\n", 2, "found 5"),  # five columns
        (b"Q1,a,b,c,d,A\nQ2 \xff\xfe,a,b,c,d,A\n", 2, "invalid UTF-8"),
    ],
)
def test_unreadable_files_raise_input_error(tmp_path: Path, content: bytes, line: int, message: str):
    path = tmp_path / "dev" / "anatomy_dev.csv"
    path.parent.mkdir()
    path.write_bytes(content)
    with pytest.raises(InputError, match=message) as err:
        run([path])
    assert err.value.path == str(path) and err.value.line == line


def test_examples(examples_dir: Path):
    paths = sorted((examples_dir / "mmlu").rglob("*.csv"))
    assert [p.name for p in paths] == ["anatomy_dev.csv", "anatomy_test.csv", "clinical_knowledge_val.csv"]
    items = run(paths)
    recs = records(items)
    assert len(recs) == 7 and len({r.id for r in recs}) == len(recs)
    assert {r.source for r in recs} == {"mmlu/anatomy", "mmlu/clinical_knowledge"}
    assert drops(items) == Counter({"bad_answer": 1, "empty_question": 1, "test_split": 2})
    assert drops(run(paths, subjects=["anatomy"]))["subject_not_selected"] == 4
