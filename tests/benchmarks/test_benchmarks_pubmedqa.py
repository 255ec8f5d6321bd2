"""PubMedQA benchmark kind: the official test set, and errors that name the file and record."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from meadow.benchmarks import load_benchmark
from meadow.errors import InputError


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
