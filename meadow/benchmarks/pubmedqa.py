"""PubMedQA PQA-L, asked as ``Context: <abstract>\\nQuestion: <question>`` with the options A yes,
B no, C maybe. Benchmark name ``pubmedqa``. PubMedQA is no training source, so its license and
citation are here.

The files are recognised by the names github.com/pubmedqa/pubmedqa gives them:

- ``ori_pqal.json``: the 1,000 labelled questions, PMID -> ``QUESTION``, ``CONTEXTS``,
  ``final_decision`` (``data/`` of the repository);
- ``test_ground_truth.json``: PMID -> ``"yes" | "no" | "maybe"`` of the official 500 test questions
  (``data/``);
- ``test_set.json``: those 500 questions, in ``ori_pqal.json``'s format, as the repository's
  ``preprocess/split_dataset.py pqal`` writes them;
- what else that script writes (``pqal_fold<k>/train_set.json`` and ``dev_set.json``, the
  cross-validation half; ``pqaa_train_set.json``, ``pqaa_dev_set.json``) and the unlabelled or
  generated sets (``ori_pqau.json``, ``ori_pqaa.json``) are no test questions and are skipped.

Any other ``.json`` is read as questions in ``ori_pqal.json``'s format. A question found in two
files (``test_set.json`` is a part of ``ori_pqal.json``) is asked once; the same PMID with a
different question is an error. The test set is the PMIDs of ``test_ground_truth.json`` (its labels
are checked against the questions'), else those of ``test_set.json``, else every question read; the
others are counted as ``not_in_test_set``. A question with a label other than yes/no/maybe, or
other than the ground truth's, is not scored (``bad_label``, ``label_mismatch``: malformed).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from meadow.benchmarks import Loaded, Options, Unscored, make_question, register
from meadow.errors import InputError, MeadowError
from meadow.sources import _common
from meadow.sources.usmle import read_json

log = logging.getLogger(__name__)

OPTIONS = {"A": "yes", "B": "no", "C": "maybe"}
DATA_FILE = "ori_pqal.json"
TEST_FILE = "test_ground_truth.json"
TEST_SET_FILE = "test_set.json"
NOT_TEST = re.compile(r"(?:train|dev)_set\.json|pqaa_(?:train|dev)_set\.json|ori_pqa[au]\.json")
"""The other files of the repository's ``data/`` (after its split script): no test questions."""
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
    summary="PubMedQA (pubmedqa/pubmedqa) ori_pqal.json or test_set.json; the official test set with "
    "test_ground_truth.json",
    license=LICENSE,
    citation=CITATION,
)
def load(files: list[Path], options: Options) -> Loaded:
    names = [p.name for p in files]
    truth_files = [p for p in files if p.name == TEST_FILE]
    data_files = [
        p for p in files if p.suffix == ".json" and p.name != TEST_FILE and not NOT_TEST.fullmatch(p.name)
    ]
    for p in files:
        if NOT_TEST.fullmatch(p.name):
            log.info("%s: not PubMedQA's test questions, skipped", p)
    if not data_files:
        raise MeadowError(f"pubmedqa: no data file ({DATA_FILE} or {TEST_SET_FILE}) among {names}")
    if len(truth_files) > 1:
        raise MeadowError(f"pubmedqa: {TEST_FILE} given twice: {', '.join(map(str, truth_files))}")
    # beside the (first) data file, as the repository keeps them
    truth_path = truth_files[0] if truth_files else data_files[0].with_name(TEST_FILE)
    truth = _truth(truth_path) if truth_path.is_file() else None

    rows: dict[str, tuple[Any, str, Path]] = {}  # PMID -> (row, where, file), in reading order
    test_set: set[str] | None = None
    for path in data_files:
        data = read_json(path)
        if not isinstance(data, dict):
            raise InputError(path, "expected an object of PMID -> question")
        if path.name == TEST_SET_FILE:
            test_set = (test_set or set()) | set(data)
        for pmid, row in data.items():
            at = _common.where(path, record=pmid)
            if pmid in rows:
                if rows[pmid][0] != row:
                    raise InputError(at, f"PMID {pmid} differs from the question in {rows[pmid][2].name}")
                continue  # the same question in a second file (test_set.json is part of ori_pqal.json)
            rows[pmid] = (row, at, path)

    selected = set(truth) if truth is not None else test_set
    if truth is not None and test_set is not None and test_set != selected:
        log.warning(
            "%s: %d PMID(s) differ from %s's; the ground truth's are the test set",
            TEST_SET_FILE,
            len(test_set ^ selected),
            TEST_FILE,
        )
    loaded = Loaded()
    for pmid, (row, at, path) in rows.items():
        if selected is not None and pmid not in selected:
            loaded.removed["pubmedqa:not_in_test_set"] += 1
            continue
        _question(loaded, pmid, row, at, path, truth, truth_path, selected is not None)
    if truth is not None:
        missing = sorted(set(truth) - set(rows))
        if missing:
            read = ", ".join(p.name for p in data_files)
            raise InputError(truth_path, f"{len(missing)} PMID(s) not in {read}, e.g. {missing[0]}")
    return loaded


def _truth(path: Path) -> dict[str, str]:
    truth = read_json(path)
    if not isinstance(truth, dict) or not all(isinstance(v, str) for v in truth.values()):
        raise InputError(path, 'expected an object of PMID -> "yes" | "no" | "maybe"')
    return {k: v.strip().lower() for k, v in truth.items()}


def _question(
    loaded: Loaded,
    pmid: str,
    row: Any,
    at: str,
    path: Path,
    truth: dict[str, str] | None,
    truth_path: Path,
    test_set: bool,
) -> None:
    if not isinstance(row, dict):
        raise InputError(at, f"expected an object, found {type(row).__name__}")
    question, contexts, decision = row.get("QUESTION"), row.get("CONTEXTS"), row.get("final_decision")
    if not isinstance(question, str) or not isinstance(contexts, list):
        raise InputError(at, "needs 'QUESTION' (a string) and 'CONTEXTS' (a list of strings)")
    if not all(isinstance(c, str) for c in contexts):
        raise InputError(at, "'CONTEXTS' must be a list of strings")
    context = " ".join(c.strip() for c in contexts)
    text = f"Context: {context}\nQuestion: {question.strip()}"
    letter = {v: k for k, v in OPTIONS.items()}.get(str(decision).strip().lower())

    def unscored(reason: str, detail: str) -> None:
        loaded.unscore(
            Unscored(f"pubmedqa:{pmid}", "pubmedqa", reason, at, detail, text, tuple(OPTIONS.values()), True)
        )

    if letter is None:
        unscored("bad_label", f"final_decision {decision!r} is not yes, no or maybe")
        return
    if truth is not None and truth[pmid] != OPTIONS[letter]:
        unscored("label_mismatch", f"final_decision {decision!r} != {truth[pmid]!r} in {truth_path.name}")
        return
    loaded.questions.append(
        make_question(
            at,
            id=f"pubmedqa:{pmid}",
            benchmark="pubmedqa",
            question=text,
            options=dict(OPTIONS),
            answer=letter,
            meta={"pmid": pmid, "file": path.name, "test_set": test_set},
        )
    )
