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


def test_pubmedqa_bad_labels_are_not_scored_and_strict_stops(tmp_path: Path, caplog):
    data = {"1": _pqal("1", "yes"), "2": _pqal("2", "perhaps"), "3": _pqal("3", "no")}
    (tmp_path / "ori_pqal.json").write_text(json.dumps(data))
    loaded = load_benchmark(f"pubmedqa:{tmp_path}/ori_pqal.json")
    assert [q.id for q in loaded.questions] == ["pubmedqa:1", "pubmedqa:3"]
    assert dict(loaded.removed) == {"pubmedqa:bad_label": 1}
    assert "ori_pqal.json (record 2): final_decision 'perhaps' is not yes, no or maybe" in caplog.text
    # its text is still the benchmark's, for decontamination
    assert [t[0] for t in loaded.texts()] == ["pubmedqa:1", "pubmedqa:3", "pubmedqa:2"]
    with pytest.raises(InputError, match=r"ori_pqal\.json \(record 2\): final_decision 'perhaps'"):
        load_benchmark(f"pubmedqa:{tmp_path}/ori_pqal.json", strict=True)

    (tmp_path / "ori_pqal.json").write_text(json.dumps({"1": _pqal("1", "yes"), "2": _pqal("2", "no")}))
    (tmp_path / "test_ground_truth.json").write_text(json.dumps({"1": "no", "2": "no"}))
    loaded = load_benchmark(f"pubmedqa:{tmp_path}")
    assert dict(loaded.removed) == {"pubmedqa:label_mismatch": 1}
    with pytest.raises(InputError, match=r"\(record 1\): final_decision 'yes' != 'no' in test_ground_truth"):
        load_benchmark(f"pubmedqa:{tmp_path}", strict=True)


def test_pubmedqa_structure_errors_name_file_and_record(tmp_path: Path):
    (tmp_path / "ori_pqal.json").write_text(json.dumps({"1": _pqal("1", "yes"), "2": ["not", "an object"]}))
    with pytest.raises(InputError, match=r"ori_pqal\.json \(record 2\): expected an object, found list"):
        load_benchmark(f"pubmedqa:{tmp_path}/ori_pqal.json")
    (tmp_path / "ori_pqal.json").write_text(json.dumps({"1": _pqal("1", "yes")}))
    (tmp_path / "test_ground_truth.json").write_text(json.dumps({"1": "yes", "7": "no"}))
    with pytest.raises(
        InputError, match=r"test_ground_truth\.json: 1 PMID\(s\) not in ori_pqal\.json, e\.g\. 7"
    ):
        load_benchmark(f"pubmedqa:{tmp_path}")


def _published(tmp_path: Path) -> dict:
    """The repository's data/ after ``preprocess/split_dataset.py pqal``: ori_pqal.json (4
    questions here), test_ground_truth.json and test_set.json (2 of them), the CV folds."""
    data = {
        "101": _pqal("1", "yes"),
        "102": _pqal("2", "no"),
        "103": _pqal("3", "maybe"),
        "104": _pqal("4", "no"),
    }
    (tmp_path / "ori_pqal.json").write_text(json.dumps(data, indent=4))
    test = {pmid: data[pmid] for pmid in ("103", "101")}
    (tmp_path / "test_set.json").write_text(json.dumps(test, indent=4))
    (tmp_path / "test_ground_truth.json").write_text(json.dumps({"101": "yes", "103": "maybe"}))
    fold = tmp_path / "pqal_fold0"
    fold.mkdir()
    (fold / "train_set.json").write_text(json.dumps({"102": data["102"]}))
    (fold / "dev_set.json").write_text(json.dumps({"104": data["104"]}))
    return data


def test_pubmedqa_reads_the_published_folder_with_test_set_json(tmp_path: Path):
    _published(tmp_path)
    loaded = load_benchmark(f"pubmedqa:{tmp_path}")  # every file of data/, as fetched and split
    assert [q.id for q in loaded.questions] == ["pubmedqa:101", "pubmedqa:103"]
    assert dict(loaded.removed) == {"pubmedqa:not_in_test_set": 2}
    assert all(q.meta["test_set"] and q.meta["file"] == "ori_pqal.json" for q in loaded.questions)


def test_pubmedqa_test_set_json_alone_or_as_the_selection(tmp_path: Path):
    _published(tmp_path)
    alone = load_benchmark(f"pubmedqa:{tmp_path}/test_set.json")
    assert [q.id for q in alone.questions] == ["pubmedqa:103", "pubmedqa:101"]
    assert not alone.removed and alone.questions[0].meta == {
        "pmid": "103",
        "file": "test_set.json",
        "test_set": True,
    }
    (tmp_path / "test_ground_truth.json").unlink()  # the split script's test_set.json selects the test set
    loaded = load_benchmark(f"pubmedqa:{tmp_path}/*.json")
    assert [q.id for q in loaded.questions] == ["pubmedqa:101", "pubmedqa:103"]
    assert dict(loaded.removed) == {"pubmedqa:not_in_test_set": 2}


def test_pubmedqa_same_pmid_with_another_question_is_an_error(tmp_path: Path):
    data = _published(tmp_path)
    (tmp_path / "test_set.json").write_text(json.dumps({"101": data["101"] | {"QUESTION": "Changed?"}}))
    with pytest.raises(
        InputError, match=r"test_set\.json \(record 101\): PMID 101 differs from the question in ori_pqal"
    ):
        load_benchmark(f"pubmedqa:{tmp_path}")


def test_pubmedqa_test_set_differing_from_the_ground_truth_warns(tmp_path: Path, caplog):
    data = _published(tmp_path)
    (tmp_path / "test_set.json").write_text(json.dumps({"101": data["101"], "102": data["102"]}))
    loaded = load_benchmark(f"pubmedqa:{tmp_path}/*.json")
    assert [q.id for q in loaded.questions] == ["pubmedqa:101", "pubmedqa:103"]  # the ground truth's
    assert "2 PMID(s) differ from test_ground_truth.json's" in caplog.text
