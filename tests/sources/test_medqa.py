"""medqa loader: MedQA US jsonl as published (built in tmp_path: no real train/dev file is public)."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

import pytest
from pydantic import ValidationError

from meadow.errors import InputError
from meadow.records import Record
from meadow.sources import Drop, get
from meadow.sources.medqa import INSTRUCTION, MedqaOptions, load


def row(question: str, options: dict[str, str], idx: str, meta: str = "step1") -> dict:
    # key order as in data_clean/questions/US/*.jsonl
    return {
        "question": question,
        "answer": options[idx],
        "options": options,
        "meta_info": meta,
        "answer_idx": idx,
    }


OPTS = {
    "A": "Ampicillin",
    "B": "Ceftriaxone",
    "C": "Ciprofloxacin",
    "D": "Doxycycline",
    "E": "Nitrofurantoin",
}
Q1 = (
    "A 23-year-old pregnant woman at 22 weeks gestation presents with burning upon urination. "
    "Which of the following is the best treatment for this patient?"
)
TRAIN = [
    row(Q1, OPTS, "E", "step2&3"),
    row("A 4-year-old boy has a barking cough and inspiratory stridor. What is the most likely cause?",
        {"A": "Parainfluenza virus", "B": "Adenovirus", "C": "Rhinovirus", "D": "Bordetella pertussis",
         "E": "Haemophilus influenzae type b"}, "A"),
    row("Which drug is first-line for a patient with Crohn's disease flare limited to the ileum?",
        {"A": "Budesonide", "B": "Crohn's-specific diet", "C": "Infliximab", "D": "Methotrexate",
         "E": "Mesalamine"}, "A"),
]  # fmt: skip
DEV = [row("What is the most common cause of community-acquired pneumonia?",
           {"A": "Streptococcus pneumoniae", "B": "Mycoplasma pneumoniae", "C": "Legionella",
            "D": "Klebsiella", "E": "Staphylococcus aureus"}, "A")]  # fmt: skip
TEST = [row("Which vitamin deficiency causes Wernicke encephalopathy?",
            {"A": "Thiamine", "B": "Niacin", "C": "Cobalamin", "D": "Folate", "E": "Pyridoxine"}, "A"),
        row("Which electrolyte abnormality causes peaked T waves?",
            {"A": "Hypokalemia", "B": "Hyperkalemia", "C": "Hypocalcemia", "D": "Hypercalcemia",
             "E": "Hypomagnesemia"}, "B")]  # fmt: skip


def write_jsonl(path: Path, rows: list) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def us(tmp_path) -> Path:
    us = tmp_path / "data_clean" / "questions" / "US"
    write_jsonl(us / "train.jsonl", TRAIN)
    write_jsonl(us / "dev.jsonl", DEV)
    write_jsonl(us / "test.jsonl", TEST)
    return us


def run(paths, **options) -> list:
    return list(load([Path(p) for p in paths], MedqaOptions(**options)))


def records(items) -> list[Record]:
    return [i for i in items if isinstance(i, Record)]


def drops(items) -> Counter:
    return Counter(i.reason for i in items if isinstance(i, Drop))


def test_registered():
    assert get("medqa").load is load


def test_default_keeps_train_and_dev_and_never_test(us):
    items = run(sorted(us.glob("*.jsonl")))
    assert len(items) == len(TRAIN) + len(DEV) + len(TEST)
    assert Counter(r.meta["split"] for r in records(items)) == Counter({"train": 3, "dev": 1})
    test_drops = [i for i in items if isinstance(i, Drop)]
    assert [d.reason for d in test_drops] == ["test_split", "test_split"]
    assert [d.where for d in test_drops] == [f"{us / 'test.jsonl'}:1", f"{us / 'test.jsonl'}:2"]
    assert not any(d.malformed for d in test_drops)


def test_exact_record_in_medical_meadow_format(us):
    rec = records(run([us / "train.jsonl"]))[0]
    assert rec.instruction == "Please answer with one of the option in the bracket" == INSTRUCTION
    assert rec.input == (
        "Q:A 23-year-old pregnant woman at 22 weeks gestation presents with burning upon urination. "
        "Which of the following is the best treatment for this patient?? \n"
        "{'A': 'Ampicillin', 'B': 'Ceftriaxone', 'C': 'Ciprofloxacin', 'D': 'Doxycycline', "
        "'E': 'Nitrofurantoin'},"
    )
    assert rec.output == "E: Nitrofurantoin"
    assert rec.source == "medqa"
    digest = hashlib.sha256(
        (Q1 + "\x1f" + json.dumps(OPTS, ensure_ascii=False, sort_keys=True)).encode()
    ).hexdigest()[:16]
    assert rec.id == f"medqa:{digest}"
    assert rec.meta == {"split": "train", "meta_info": "step2&3", "answer_idx": "E", "n_options": 5,
                        "file": "train.jsonl"}  # fmt: skip


def test_options_rendered_like_python_dict(us):
    rec = records(run([us / "train.jsonl"]))[2]
    # an apostrophe switches Python's repr to double quotes, as str(dict) prints it
    assert "'A': 'Budesonide', 'B': \"Crohn's-specific diet\"" in rec.input
    assert rec.input.endswith("'E': 'Mesalamine'},")


def test_four_option_phrases_files(tmp_path):
    row4 = row(
        "Which nerve is injured in wrist drop?",
        {"A": "Radial", "B": "Ulnar", "C": "Median", "D": "Axillary"},
        "A",
    )
    row4["metamap_phrases"] = ["nerve", "wrist drop"]
    path = write_jsonl(tmp_path / "US" / "4_options" / "phrases_no_exclude_train.jsonl", [row4])
    (rec,) = run([path])
    assert rec.output == "A: Radial"
    assert rec.input.endswith("{'A': 'Radial', 'B': 'Ulnar', 'C': 'Median', 'D': 'Axillary'},")
    assert rec.meta["split"] == "train" and rec.meta["n_options"] == 4
    dev = write_jsonl(tmp_path / "US" / "4_options" / "phrases_no_exclude_dev.jsonl", [row4])
    assert drops(run([dev], splits=["train"])) == Counter({"split_not_selected": 1})


def test_allow_test_for_evaluation(us):
    items = run([us / "test.jsonl"], allow_test=True)
    assert [r.output for r in records(items)] == ["A: Thiamine", "B: Hyperkalemia"]
    assert {r.meta["split"] for r in records(items)} == {"test"}
    items = run(sorted(us.glob("*.jsonl")), splits=["test"], allow_test=True)
    assert len(records(items)) == 2 and drops(items) == Counter({"split_not_selected": 4})


def test_test_in_splits_needs_allow_test():
    with pytest.raises(ValidationError, match="allow_test"):
        MedqaOptions(splits=["train", "test"])
    with pytest.raises(ValidationError):
        MedqaOptions(splits=["validation"])
    with pytest.raises(ValidationError):
        MedqaOptions(splits=[])


@pytest.mark.parametrize("name", ["US_qbank.jsonl", "questions.jsonl", "train_test.jsonl"])
def test_file_without_one_split_is_refused(tmp_path, name):
    path = write_jsonl(tmp_path / name, TRAIN)
    with pytest.raises(InputError, match="train/dev/test") as err:
        run([path])
    assert err.value.path == str(path)


def test_malformed_rows_are_counted(tmp_path):
    bad = [
        row("Q?", {"A": "x", "B": "y"}, "A") | {"answer_idx": "F"},
        row("Q?", {"A": "x", "B": "y"}, "A") | {"answer": "z"},
        row("Q?", {"A": "x", "B": "y"}, "A") | {"options": ["x", "y"]},
        row("Q?", {"A": "x", "B": "y"}, "A") | {"options": {"A": "x", "B": 2}},
        row("Q?", {"A": "x", "B": "y"}, "A") | {"question": 17},
        {"question": "Q?", "options": {"A": "x"}, "answer_idx": "A"},
        ["not", "an", "object"],
        row("  ", {"A": "x", "B": "y"}, "B"),
        row("Q?", {"A": "x ", "B": "y"}, "A") | {"answer": "x"},  # trailing space only: still the answer
    ]
    items = run([write_jsonl(tmp_path / "train.jsonl", bad)])
    assert drops(items) == Counter(
        {"answer_not_in_options": 1, "answer_mismatch": 1, "invalid_row": 5, "empty_question": 1}
    )
    assert all(d.malformed for d in items if isinstance(d, Drop) and d.reason != "empty_question")
    assert [d.where for d in items if isinstance(d, Drop)][:2] == [
        f"{tmp_path / 'train.jsonl'}:1",
        f"{tmp_path / 'train.jsonl'}:2",
    ]
    (rec,) = records(items)
    assert rec.output == "A: x"


def test_truncated_line_names_file_and_line(tmp_path):
    path = write_jsonl(tmp_path / "train.jsonl", TRAIN)
    text = path.read_text()
    path.write_text(text[: len(text) - 40])
    items = []
    with pytest.raises(InputError) as err:
        for item in load([path], MedqaOptions()):
            items.append(item)
    assert (err.value.path, err.value.line) == (str(path), 3)
    assert len(records(items)) == 2


def test_invalid_utf8_names_line(tmp_path):
    path = write_jsonl(tmp_path / "dev.jsonl", TRAIN)
    path.write_bytes(path.read_bytes().replace(b"barking", b"bark\xffing"))
    with pytest.raises(InputError, match="UTF-8") as err:
        run([path])
    assert (err.value.path, err.value.line) == (str(path), 2)


def test_10mb_question_is_dropped(tmp_path):
    big = row("A patient " * 1_000_000 + "?", {"A": "x", "B": "y"}, "B")
    items = run([write_jsonl(tmp_path / "train.jsonl", [big, TRAIN[0]])])
    assert drops(items) == Counter({"too_long_input": 1})
    assert len(records(items)) == 1


def test_examples_load(examples_dir):
    items = run(sorted((examples_dir / "medqa" / "US").glob("*.jsonl")))
    assert len(records(items)) == 6
    assert drops(items) == Counter({"test_split": 2})
    assert all(r.meta["split"] == "train" for r in records(items))
    assert len({r.id for r in records(items)}) == 6
