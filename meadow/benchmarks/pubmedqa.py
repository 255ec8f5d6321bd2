"""PubMedQA: ``ori_pqal.json`` (PMID -> ``QUESTION``, ``CONTEXTS``, ``final_decision``), asked as
``Context: <abstract>\\nQuestion: <question>`` with the options A yes, B no, C maybe.

With ``test_ground_truth.json`` beside it (or among the files) only the official 500 test questions
are kept (the others are counted as removed) and their labels are checked against it. Benchmark
name ``pubmedqa``. PubMedQA is no training source, so its license and citation are here.
"""

from __future__ import annotations

from pathlib import Path

from meadow.benchmarks import Loaded, Options, make_question, register
from meadow.errors import InputError, MeadowError
from meadow.sources import _common
from meadow.sources.usmle import read_json

OPTIONS = {"A": "yes", "B": "no", "C": "maybe"}
TEST_FILE = "test_ground_truth.json"
LICENSE = "MIT (github.com/pubmedqa/pubmedqa LICENSE)"
CITATION = """@inproceedings{jin2019pubmedqa,
  title={PubMedQA: A Dataset for Biomedical Research Question Answering},
  author={Jin, Qiao and Dhingra, Bhuwan and Liu, Zhengping and Cohen, William and Lu, Xinghua},
  booktitle={Proceedings of EMNLP-IJCNLP 2019},
  pages={2567--2577},
  year={2019}
}"""


@register(
    "pubmedqa",
    summary="PubMedQA (pubmedqa/pubmedqa) ori_pqal.json, the official test set with test_ground_truth.json",
    license=LICENSE,
    citation=CITATION,
)
def load(files: list[Path], options: Options) -> Loaded:
    loaded = Loaded()
    data_files = [p for p in files if p.suffix == ".json" and p.name != TEST_FILE]
    if not data_files:
        raise MeadowError(f"pubmedqa: no data file (e.g. ori_pqal.json) among {[p.name for p in files]}")
    for path in data_files:
        truth_path = next((p for p in files if p.name == TEST_FILE), path.with_name(TEST_FILE))
        truth = read_json(truth_path) if truth_path.is_file() else None
        if truth is not None and not isinstance(truth, dict):
            raise InputError(truth_path, 'expected an object of PMID -> "yes" | "no" | "maybe"')
        data = read_json(path)
        if not isinstance(data, dict):
            raise InputError(path, "expected an object of PMID -> question")
        for pmid, row in data.items():
            at = _common.where(path, record=pmid)
            if truth is not None and pmid not in truth:
                loaded.removed["pubmedqa:not_in_test_set"] += 1
                continue
            if not isinstance(row, dict):
                raise InputError(at, f"expected an object, found {type(row).__name__}")
            question, contexts, decision = row.get("QUESTION"), row.get("CONTEXTS"), row.get("final_decision")
            if not isinstance(question, str) or not isinstance(contexts, list):
                raise InputError(at, "needs 'QUESTION' (a string) and 'CONTEXTS' (a list of strings)")
            if not all(isinstance(c, str) for c in contexts):
                raise InputError(at, "'CONTEXTS' must be a list of strings")
            letter = {v: k for k, v in OPTIONS.items()}.get(str(decision).strip().lower())
            if letter is None:
                raise InputError(at, f"final_decision {decision!r} is not yes, no or maybe")
            if truth is not None and truth[pmid] != OPTIONS[letter]:
                raise InputError(at, f"final_decision {decision!r} != {truth[pmid]!r} in {truth_path.name}")
            context = " ".join(c.strip() for c in contexts)
            loaded.questions.append(
                make_question(
                    at,
                    id=f"pubmedqa:{pmid}",
                    benchmark="pubmedqa",
                    question=f"Context: {context}\nQuestion: {question.strip()}",
                    options=dict(OPTIONS),
                    answer=letter,
                    meta={"pmid": pmid, "file": path.name, "test_set": truth is not None},
                )
            )
        if truth is not None:
            missing = sorted(set(truth) - set(data))
            if missing:
                raise InputError(truth_path, f"{len(missing)} PMID(s) not in {path.name}, e.g. {missing[0]}")
    return loaded
