"""Benchmark loaders: real MMLU files, MedQA and USMLE in their published layouts, and errors that
name the file and line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from meadow.errors import InputError, MeadowError
from meadow.eval.benchmarks import load_benchmark, parse_spec


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


def test_mmlu_bad_answer_names_file_and_line(tmp_path: Path):
    (tmp_path / "anatomy_test.csv").write_text("Q1?,a,b,c,d,A\nQ2?,a,b,c,d,F\n")
    with pytest.raises(InputError, match=r"anatomy_test\.csv:2: .*answer 'F' is not one of the options"):
        load_benchmark(f"mmlu:{tmp_path}/anatomy_test.csv")


def test_mmlu_wrong_field_count_names_file_and_line(tmp_path: Path):
    (tmp_path / "anatomy_val.csv").write_text("Q1?,a,b,c,d,A\nQ2?,a,b,c,A\n")
    with pytest.raises(InputError, match=r"anatomy_val\.csv:2: expected 6 fields"):
        load_benchmark(f"mmlu:{tmp_path}/anatomy_val.csv")


def _medqa_row(**over):
    row = {
        "question": "A 23-year-old woman ... Which is the most likely diagnosis?",
        "answer": "Berry aneurysm rupture",
        "options": {"A": "Berry aneurysm rupture", "B": "Migraine", "C": "Tension headache", "D": "Stroke"},
        "meta_info": "step1",
        "answer_idx": "A",
    }
    row.update(over)
    return row


def test_medqa_four_and_five_options(tmp_path: Path):
    five = _medqa_row(options={**_medqa_row()["options"], "E": "Cluster headache"}, question="Other?")
    (tmp_path / "test.jsonl").write_text(json.dumps(_medqa_row()) + "\n" + json.dumps(five) + "\n")
    loaded = load_benchmark(f"medqa:{tmp_path}/test.jsonl")
    assert [q.benchmark for q in loaded.questions] == ["medqa_4opt", "medqa_5opt"]
    assert loaded.questions[0].answer == "A"
    assert loaded.questions[0].meta["split"] == "test"


def test_medqa_malformed_line_names_file_and_line(tmp_path: Path):
    path = tmp_path / "phrases_no_exclude_test.jsonl"
    path.write_text(json.dumps(_medqa_row()) + "\n" + json.dumps(_medqa_row(answer_idx="F")) + "\n")
    with pytest.raises(InputError, match=r"phrases_no_exclude_test\.jsonl:2: .*answer 'F' is not one of"):
        load_benchmark(f"medqa:{path}")
    path.write_text(json.dumps(_medqa_row()) + "\n{not json\n")
    with pytest.raises(InputError, match=r"phrases_no_exclude_test\.jsonl:2: invalid JSON"):
        load_benchmark(f"medqa:{path}")


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


@pytest.mark.parametrize("spec", ["mmlu", "nope:x", "mmlu:"])
def test_bad_spec(spec: str):
    with pytest.raises(MeadowError, match="KIND:PATH_OR_GLOB"):
        parse_spec(spec)


def test_no_files(tmp_path: Path):
    with pytest.raises(MeadowError, match="no such file"):
        load_benchmark(f"mmlu:{tmp_path}/missing_*.csv")


def _pqal(pmid: str, decision: str) -> dict:
    return {
        "QUESTION": f"Does treatment {pmid} work?",
        "CONTEXTS": ["Background sentence.", "Results sentence."],
        "LABELS": ["BACKGROUND", "RESULTS"],
        "final_decision": decision,
        "LONG_ANSWER": "It does.",
    }


def test_pubmedqa_keeps_the_official_test_set(tmp_path: Path):
    data = {"21645374": _pqal("1", "yes"), "16418930": _pqal("2", "no"), "9488747": _pqal("3", "maybe")}
    (tmp_path / "ori_pqal.json").write_text(json.dumps(data))
    loaded = load_benchmark(f"pubmedqa:{tmp_path}/ori_pqal.json")  # no ground truth beside: all 1000
    assert [(q.id, q.answer) for q in loaded.questions] == [
        ("pubmedqa:21645374", "A"),
        ("pubmedqa:16418930", "B"),
        ("pubmedqa:9488747", "C"),
    ]
    q = loaded.questions[0]
    assert q.options == {"A": "yes", "B": "no", "C": "maybe"}
    assert q.question == "Context: Background sentence. Results sentence.\nQuestion: Does treatment 1 work?"
    (tmp_path / "test_ground_truth.json").write_text(json.dumps({"21645374": "yes", "9488747": "maybe"}))
    loaded = load_benchmark(f"pubmedqa:{tmp_path}")
    assert [q.id for q in loaded.questions] == ["pubmedqa:21645374", "pubmedqa:9488747"]
    assert dict(loaded.removed) == {"pubmedqa:not_in_test_set": 1}


def test_pubmedqa_errors_name_file_and_record(tmp_path: Path):
    (tmp_path / "ori_pqal.json").write_text(json.dumps({"1": _pqal("1", "yes"), "2": _pqal("2", "perhaps")}))
    with pytest.raises(InputError, match=r"ori_pqal\.json \(record 2\): final_decision 'perhaps'"):
        load_benchmark(f"pubmedqa:{tmp_path}/ori_pqal.json")
    (tmp_path / "ori_pqal.json").write_text(json.dumps({"1": _pqal("1", "yes")}))
    (tmp_path / "test_ground_truth.json").write_text(json.dumps({"1": "no"}))
    with pytest.raises(InputError, match=r"\(record 1\): final_decision 'yes' != 'no' in test_ground_truth"):
        load_benchmark(f"pubmedqa:{tmp_path}")
