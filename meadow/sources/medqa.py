"""MedQA (Jin et al. 2020, github.com/jind11/MedQA): USMLE-style multiple-choice questions.

Format read: the US questions as published in ``data_clean/questions/US/`` (``train.jsonl``,
``dev.jsonl``, ``test.jsonl``; 5 options A-E) and ``US/4_options/phrases_no_exclude_{train,dev,test}.jsonl``
(4 options, plus a ``metamap_phrases`` list): JSON Lines, one question per line::

    {"question": str, "answer": str, "options": {"A": str, ...}, "meta_info": "step1", "answer_idx": "A"}

Framing (as ``medalpaca/medical_meadow_medqa``): ``instruction`` = "Please answer with one of the
option in the bracket", ``input`` = ``"Q:" + question + "? \\n" + str(options) + ","`` (the options
dict rendered the way Python prints a dict, e.g. ``{'A': 'Ampicillin', 'B': ...}``), ``output`` =
``"<answer_idx>: <answer>"``. The input layout is reproduced from rows of medical_meadow_medqa quoted
in public code ("...this patient?? \\n{'A': 'Berry aneurysm rupture', ...}," / output
"E: Lipohyalinosis"); medAlpaca's 10,178 rows are the US train split.

Splits: the split of each file comes from its name (``train``/``dev``/``test``, e.g.
``phrases_no_exclude_dev.jsonl``); a file whose name names no split (``US_qbank.jsonl``, which holds
all splits) is refused. Only the splits in option ``splits`` (default train and dev) are kept; rows
of other train/dev files are dropped as ``split_not_selected``. A test-split file is never training
data: each of its rows is dropped as ``test_split``, unless ``allow_test: true`` (for evaluation or
decontamination builds only; ``"test"`` in ``splits`` without ``allow_test`` is a recipe error).

Rows whose ``answer_idx`` is not one of the options, or whose ``answer`` differs from that option's
text, are malformed. MedQA has no ids: ``Record.id`` is a content hash of question and options.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from meadow.errors import InputError
from meadow.records import Record
from meadow.sources import Drop, Options, register
from meadow.sources._common import content_id, iter_json_records, make_record

SOURCE = "medqa"
INSTRUCTION = "Please answer with one of the option in the bracket"

Split = Literal["train", "dev", "test"]
_SPLIT = re.compile(r"(?<![a-z])(train|dev|test)(?![a-z])")

CITATION = """\
@article{jin2020disease,
  title={What Disease does this Patient Have? A Large-scale Open Domain Question Answering Dataset
         from Medical Exams},
  author={Jin, Di and Pan, Eileen and Oufattole, Nassim and Weng, Wei-Hung and Fang, Hanyi and
          Szolovits, Peter},
  journal={arXiv preprint arXiv:2009.13081},
  year={2020}
}"""


class MedqaOptions(Options):
    splits: list[Split] = Field(
        default_factory=lambda: ["train", "dev"],
        min_length=1,
        description="splits to keep (from the file names)",
    )
    allow_test: bool = Field(
        False, description="keep the rows of test-split files (evaluation/decontamination builds only)"
    )

    @model_validator(mode="after")
    def _test_needs_allow(self) -> MedqaOptions:
        if "test" in self.splits and not self.allow_test:
            raise ValueError(
                "splits contains 'test': the MedQA test split is for evaluation only; "
                "set allow_test: true to load it on purpose"
            )
        return self


def format_input(question: str, options: dict[str, str]) -> str:
    """medical_meadow_medqa's input: ``Q:<question>? \\n{'A': '...', ...},``."""
    return f"Q:{question}? \n{options},"


def split_of(path: Path) -> Split:
    """The split named in a MedQA file name; InputError if it names none or several."""
    found = set(_SPLIT.findall(path.stem.lower()))
    if len(found) != 1:
        what = "no split" if not found else f"several splits ({', '.join(sorted(found))})"
        raise InputError(
            path,
            f"file name names {what}: expected exactly one of train/dev/test in it "
            "(e.g. train.jsonl, phrases_no_exclude_dev.jsonl); US_qbank.jsonl mixes all splits "
            "and is not read",
        )
    return found.pop()  # type: ignore[return-value]


@register(
    SOURCE,
    options=MedqaOptions,
    per_file=True,
    produces="records",
    summary="MedQA USMLE multiple-choice questions (US, train/dev; test only for evaluation)",
    license="MIT (github.com/jind11/MedQA LICENSE)",
    citation=CITATION,
)
def load(paths: Sequence[Path], options: MedqaOptions) -> Iterator[Record | Drop]:
    for path in paths:
        path = Path(path)
        split = split_of(path)
        keep = options.allow_test if split == "test" else split in options.splits
        for at, row in iter_json_records(path):
            if split == "test" and not keep:
                yield Drop("test_split", at, f"{path.name} is a test-split file; set allow_test to load it")
            elif not keep:
                yield Drop("split_not_selected", at, f"split {split!r} not in {options.splits}")
            else:
                yield _row(path, at, split, row)


def _row(path: Path, at: str, split: str, row: Any) -> Record | Drop:
    if not isinstance(row, dict):
        return Drop("invalid_row", at, f"expected an object, found {type(row).__name__}", malformed=True)
    question, answer, answer_idx = row.get("question"), row.get("answer"), row.get("answer_idx")
    options = row.get("options")
    for name, value in (("question", question), ("answer", answer), ("answer_idx", answer_idx)):
        if not isinstance(value, str):
            return Drop("invalid_row", at, f"'{name}' missing or not a string", malformed=True)
    if (
        not isinstance(options, dict)
        or not options
        or not all(isinstance(k, str) and isinstance(v, str) for k, v in options.items())
    ):
        return Drop("invalid_row", at, "'options' must be a non-empty object of strings", malformed=True)
    if answer_idx not in options:
        return Drop(
            "answer_not_in_options", at, f"answer_idx {answer_idx!r} not in {sorted(options)}", malformed=True
        )
    if options[answer_idx].strip() != answer.strip():
        return Drop(
            "answer_mismatch",
            at,
            f"answer {answer!r} != option {answer_idx}: {options[answer_idx]!r}",
            malformed=True,
        )
    if not question.strip():
        return Drop("empty_question", at, "'question' is empty")
    meta_info = row.get("meta_info")
    return make_record(
        at,
        instruction=INSTRUCTION,
        input=format_input(question, options),
        output=f"{answer_idx}: {answer}",
        source=SOURCE,
        id=content_id(SOURCE, question, json.dumps(options, ensure_ascii=False, sort_keys=True)),
        meta={
            "split": split,
            "meta_info": meta_info if isinstance(meta_info, str) else None,
            "answer_idx": answer_idx,
            "n_options": len(options),
            "file": path.name,
        },
    )
