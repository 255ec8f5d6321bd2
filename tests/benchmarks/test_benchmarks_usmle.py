"""USMLE self-assessment benchmark kind: image questions removed and counted, errors naming the record."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from meadow.benchmarks import load_benchmark
from meadow.errors import InputError


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


def test_usmle_removes_and_counts_image_questions(tmp_path: Path):
    loaded = load_benchmark(f"usmle:{_usmle(tmp_path)}")
    assert [(q.id, q.benchmark, q.answer) for q in loaded.questions] == [
        ("usmle:step1:1", "usmle_step1", "C"),
        ("usmle:step1:5", "usmle_step1", "D"),
    ]
    assert dict(loaded.removed) == {"usmle_step1:has_image": 2, "usmle_step1:no_options": 1}


def test_usmle_missing_solution_names_the_record(tmp_path: Path):
    _usmle(tmp_path)
    (tmp_path / "step1_solutions.json").write_text(json.dumps({"1": "C"}))
    with pytest.raises(InputError, match=r"step1\.json \(record 4\): question 5 missing"):
        load_benchmark(f"usmle:{tmp_path}/step1.json")
