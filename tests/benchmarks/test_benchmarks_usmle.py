"""USMLE self-assessment benchmark kind: image questions and the PDF conversion's slips are left out
of scoring and counted by reason (their text kept for decontamination), ``strict`` stops on a slip,
and the repairs that are safe are made (examples/usmle/ reproduces each quirk of medAlpaca's files)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from meadow.benchmarks import load_benchmark
from meadow.errors import InputError

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "usmle"


def _usmle(tmp_path: Path) -> Path:
    questions = [
        {"no": 1, "question": "Which nerve?", "options": {"A": "x", "B": "y", "C": "z"}},
        {"no": 2, "question": "Look at the image. Which?", "options": {"A": "x", "B": "y"}},
        {"no": 3, "question": "See ![](img.png) here", "options": {"A": "x", "B": "y"}},
        {"no": 4, "question": "No options", "options": {}},
        {"no": 5, "question": "Which drug?", "options": {"A": "x", "B": "y", "C": "z", "D": "w"}},
    ]
    (tmp_path / "step1.json").write_text(json.dumps(questions))
    solutions = {"1": "C", "2": "A", "3": "B", "4": "A", "5": "d"}
    (tmp_path / "step1_solutions.json").write_text(json.dumps(solutions))
    (tmp_path / "question_with_images.json").write_text(json.dumps({"step1": [2], "step2": [], "step3": []}))
    return tmp_path


def test_usmle_removes_and_counts_image_questions_by_rule(tmp_path: Path):
    loaded = load_benchmark(f"usmle:{_usmle(tmp_path)}")
    assert [(q.id, q.benchmark, q.answer) for q in loaded.questions] == [
        ("usmle:step1:1", "usmle_step1", "C"),
        ("usmle:step1:5", "usmle_step1", "D"),
    ]
    assert dict(loaded.removed) == {
        "usmle_step1:image_listed": 1,
        "usmle_step1:image_link": 1,
        "usmle_step1:no_options": 1,
    }


def test_usmle_missing_solution_is_counted_or_with_strict_names_the_record(tmp_path: Path, caplog):
    _usmle(tmp_path)
    (tmp_path / "step1_solutions.json").write_text(json.dumps({"1": "C"}))
    loaded = load_benchmark(f"usmle:{tmp_path}/step1.json")
    assert [q.id for q in loaded.questions] == ["usmle:step1:1"]
    assert loaded.removed["usmle_step1:no_solution"] == 1
    assert "step1.json (record 4), question no 5: question 5 missing from step1_solutions.json" in caplog.text
    with pytest.raises(InputError, match=r"step1\.json \(record 4\), question no 5: question 5 missing"):
        load_benchmark(f"usmle:{tmp_path}/step1.json", strict=True)


def test_examples_reproduce_the_published_quirks(caplog):
    """examples/usmle/ holds one item for each slip found in (or feared for) medAlpaca's files."""
    loaded = load_benchmark(f"usmle:{EXAMPLES}")
    by_id = {q.id: q for q in loaded.questions}
    assert list(by_id) == [
        "usmle:step1:1",
        "usmle:step1:3",
        "usmle:step2:1",
        "usmle:step2:5",  # option keys "A " ... and the solution "c"
        "usmle:step2:6",  # the solution given as the option's text
        "usmle:step3:1",  # ". \n" before the question
        "usmle:step3:2",  # the first of two identical records
        "usmle:step3:4",  # the solution "Answer: D"
    ]
    assert dict(loaded.removed) == {
        "usmle_step1:image_listed": 1,
        "usmle_step1:image_field": 1,  # "image_url" in the record itself
        "usmle_step1:no_options": 1,
        "usmle_step2:merged_options": 1,  # key E, option E's text merged into D
        "usmle_step2:no_options": 1,  # the choices inside the question text
        "usmle_step2:missing_option": 1,  # option C merged into B
        "usmle_step2:image_listed": 1,
        "usmle_step3:duplicate": 1,
        "usmle_step3:duplicate_number": 2,
        "usmle_step3:ambiguous_solution": 1,  # "5" twice in step3_solutions.json, A and B
    }
    assert by_id["usmle:step2:5"].options["C"] == "Graves disease" and by_id["usmle:step2:5"].answer == "C"
    assert by_id["usmle:step2:6"].answer == "A"
    assert by_id["usmle:step3:1"].question.startswith("A 67-year-old woman with type 2 diabetes")
    assert by_id["usmle:step3:4"].answer == "D"
    # a slip is a warning naming the file and the question
    slip = "step2.json (record 1), question no 2: option D holds another option: 'Answer E: Tubo-ovarian"
    assert slip in caplog.text
    # every question keeps its text for decontamination, scored or not (an empty one has none)
    texts = {item_id: question for item_id, question, _ in loaded.texts()}
    assert len(texts) == len(loaded.questions) + len(loaded.unscored)
    assert "Minimal change disease" in texts["usmle:step2:3"]  # the choices inside the question text
    assert {"usmle:step3:3", "usmle:step3:3#2", "usmle:step1:5"} <= set(texts)


@pytest.mark.parametrize(
    ("step", "message"),
    [
        ("step2", r"step2\.json \(record 1\), question no 2: option D holds another option"),
        ("step3", r"step3\.json \(record 3\), question no 3: 2 different questions are numbered 3"),
    ],
)
def test_strict_stops_on_the_first_slip(step: str, message: str):
    with pytest.raises(InputError, match=message):
        load_benchmark(f"usmle:{EXAMPLES}/{step}.json", strict=True)


def test_strict_accepts_image_and_optionless_questions():
    loaded = load_benchmark(f"usmle:{EXAMPLES}/step1.json", strict=True)  # removed by rule, not slips
    assert len(loaded.questions) == 2


def test_image_field_counts_without_the_image_list(tmp_path: Path):
    for name in ("step1.json", "step1_solutions.json"):
        shutil.copy(EXAMPLES / name, tmp_path / name)
    step1 = json.loads((tmp_path / "step1.json").read_text())
    step1[2]["image"] = ""  # an empty field is no image
    step1[0]["image"] = "q1.jpg"
    (tmp_path / "step1.json").write_text(json.dumps(step1))
    loaded = load_benchmark(f"usmle:{tmp_path}/step1.json")  # no question_with_images.json
    assert [q.id for q in loaded.questions] == ["usmle:step1:2", "usmle:step1:3"]
    assert dict(loaded.removed) == {"usmle_step1:image_field": 2, "usmle_step1:no_options": 1}


def test_answer_key_and_option_letter_repairs(tmp_path: Path):
    options = {"a": "Alpha", " B ": "Beta", "(C)": "Gamma", "D.": "Delta"}
    questions = [{"no": n, "question": f"Question {n}?", "options": options} for n in range(1, 8)]
    (tmp_path / "step1.json").write_text(json.dumps(questions))
    answers = {
        "1": " b ",
        "2": "(C)",
        "3": "The answer is D",
        "4": "gamma.",
        "5": "Epsilon",
        "6": "E",
        "7": "A",
    }
    (tmp_path / "step1_solutions.json").write_text(json.dumps(answers))
    loaded = load_benchmark(f"usmle:{tmp_path}")
    assert [(q.id, q.answer) for q in loaded.questions] == [
        ("usmle:step1:1", "B"),
        ("usmle:step1:2", "C"),
        ("usmle:step1:3", "D"),
        ("usmle:step1:4", "C"),
        ("usmle:step1:7", "A"),
    ]
    assert loaded.questions[0].options == {"A": "Alpha", "B": "Beta", "C": "Gamma", "D": "Delta"}
    assert dict(loaded.removed) == {"usmle_step1:answer_not_in_options": 2}


def test_option_keys_that_are_no_letters_or_repeat_one(tmp_path: Path):
    questions = [
        {"no": 1, "question": "Q1?", "options": {"A": "x", "a": "y"}},
        {"no": 2, "question": "Q2?", "options": {"A": "x", "Option 2": "y"}},
        {"no": 3, "question": "Q3?", "options": ["x", "y"]},
        {"no": 4, "question": "Q4?", "options": {"A": "x", "B": "y"}},
    ]
    (tmp_path / "step1.json").write_text(json.dumps(questions))
    (tmp_path / "step1_solutions.json").write_text(json.dumps({str(n): "A" for n in range(1, 5)}))
    loaded = load_benchmark(f"usmle:{tmp_path}")
    assert [q.id for q in loaded.questions] == ["usmle:step1:4"]
    assert dict(loaded.removed) == {"usmle_step1:invalid_options": 3}
