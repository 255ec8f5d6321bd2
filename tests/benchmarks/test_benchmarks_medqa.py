"""MedQA benchmark kind: 4 and 5 options, and errors that name the file and line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from meadow.benchmarks import load_benchmark
from meadow.errors import InputError


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
