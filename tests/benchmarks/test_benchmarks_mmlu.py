"""MMLU benchmark kind: the real dev files, subject selection, and errors that name the file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from meadow.benchmarks import load_benchmark
from meadow.errors import InputError


def test_mmlu_dev_fixtures_load_every_medical_question(raw_fixtures: Path):
    loaded = load_benchmark(f"mmlu:{raw_fixtures}/mmlu/dev/*.csv")
    assert len(loaded.questions) == 30  # six subjects x five dev questions
    assert {q.meta["subject"] for q in loaded.questions} == {
        "anatomy",
        "clinical_knowledge",
        "college_biology",
        "college_medicine",
        "medical_genetics",
        "professional_medicine",
    }
    first = loaded.questions[0]
    assert first.benchmark == "mmlu"
    assert first.question == "What is the embryological origin of the hyoid bone?"
    assert first.options == {
        "A": "The first pharyngeal arch",
        "B": "The first and second pharyngeal arches",
        "C": "The second pharyngeal arch",
        "D": "The second and third pharyngeal arches",
    }
    assert first.answer == "D"
    assert first.meta["line"] == 1
    assert len({q.id for q in loaded.questions}) == 30


def test_mmlu_skips_subjects_not_selected(tmp_path: Path):
    (tmp_path / "astronomy_test.csv").write_text("Q?,a,b,c,d,A\n")
    (tmp_path / "anatomy_test.csv").write_text("Q?,a,b,c,d,B\n")
    loaded = load_benchmark(f"mmlu:{tmp_path}/*.csv")
    assert [(q.meta["subject"], q.meta["split"], q.answer) for q in loaded.questions] == [
        ("anatomy", "test", "B")
    ]


def test_mmlu_subjects_option_selects_others(tmp_path: Path):
    (tmp_path / "astronomy_test.csv").write_text("Q?,a,b,c,d,A\n")
    (tmp_path / "anatomy_test.csv").write_text("Q?,a,b,c,d,B\n")
    loaded = load_benchmark(f"mmlu:{tmp_path}/*.csv", subjects=["astronomy"])
    assert [q.meta["subject"] for q in loaded.questions] == ["astronomy"]


def test_mmlu_bad_answer_names_file_and_line(tmp_path: Path):
    (tmp_path / "anatomy_test.csv").write_text("Q1?,a,b,c,d,A\nQ2?,a,b,c,d,F\n")
    with pytest.raises(InputError, match=r"anatomy_test\.csv:2: .*answer 'F' is not one of the options"):
        load_benchmark(f"mmlu:{tmp_path}/anatomy_test.csv")


def test_mmlu_wrong_field_count_names_file_and_line(tmp_path: Path):
    (tmp_path / "anatomy_val.csv").write_text("Q1?,a,b,c,d,A\nQ2?,a,b,c,A\n")
    with pytest.raises(InputError, match=r"anatomy_val\.csv:2: expected 6 fields"):
        load_benchmark(f"mmlu:{tmp_path}/anatomy_val.csv")
