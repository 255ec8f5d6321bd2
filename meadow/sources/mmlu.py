"""MMLU (Hendrycks et al.): medical multiple-choice questions as answer-the-question records.

Format read: the CSV files of MMLU's ``data.tar`` (github.com/hendrycks/test,
https://people.eecs.berkeley.edu/~hendrycks/data.tar), laid out as
``data/{dev,val,test}/<subject>_<split>.csv`` plus ``data/auxiliary_train/<name>.csv``.
Each file is headerless UTF-8 CSV with six columns ``question,A,B,C,D,answer``; ``answer``
is one of the letters A-D. Subject and split come from the file name
(``anatomy_dev.csv`` -> subject ``anatomy``, split ``dev``); a file in a folder named
``auxiliary_train`` is split ``auxiliary_train`` with its stem as subject. Any other name
raises InputError, as does a row that is not six fields (the CSV is read with
``iter_csv(fieldnames=...)``).

Task framing (one record per question). medAlpaca's ``medical_meadow_mmmlu`` wording
could not be found (its JSON is not on GitHub and the Hub viewer was not readable), so
this loader uses a plain framing:

- instruction: ``"Answer the following multiple choice question."``
- input: the question, a newline, then ``"A: ...\\nB: ...\\nC: ...\\nD: ..."``
- output: ``"<letter>: <text of the correct option>"``

Filters (options): ``subjects`` (default: the six medical subjects anatomy,
clinical_knowledge, college_biology, college_medicine, medical_genetics,
professional_medicine) and ``splits`` (default ``["dev", "val"]``).

Deviation from medAlpaca: medAlpaca trained on MMLU test questions (3,787 rows), which
contaminates any MMLU evaluation of the model. Here test rows are dropped as
``test_split`` unless the recipe lists ``"test"`` in ``splits`` and sets
``allow_test: true`` (``"test"`` without ``allow_test`` is a recipe error).

Drops, one per row: ``test_split``; ``split_not_selected`` (e.g. auxiliary_train rows);
``subject_not_selected`` (a file matched by the recipe's glob whose subject is not in
``subjects``: its rows are read and counted one by one, so the manifest shows how many
questions were left out); ``empty_question``; ``bad_answer`` (answer not A-D, malformed);
and the field checks of ``make_record`` (``too_long_input`` for a runaway cell,
``invalid_record`` for a NUL byte). Record id: ``mmlu/<subject>:<split>:<hash>``, the hash
taken over the question and its four options; source ``mmlu/<subject>``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Literal

from pydantic import field_validator, model_validator

from meadow.errors import InputError
from meadow.sources import Drop, Item, Options, register
from meadow.sources._common import content_id, iter_csv, make_record, where

INSTRUCTION = "Answer the following multiple choice question."
LETTERS = ("A", "B", "C", "D")
FIELDNAMES = ["question", *LETTERS, "answer"]
MEDICAL_SUBJECTS = (
    "anatomy",
    "clinical_knowledge",
    "college_biology",
    "college_medicine",
    "medical_genetics",
    "professional_medicine",
)
# The 57 subjects of MMLU's dev/val/test folders (a typo in a recipe is an error, not zero rows).
ALL_SUBJECTS = frozenset(
    {
        "abstract_algebra",
        "anatomy",
        "astronomy",
        "business_ethics",
        "clinical_knowledge",
        "college_biology",
        "college_chemistry",
        "college_computer_science",
        "college_mathematics",
        "college_medicine",
        "college_physics",
        "computer_security",
        "conceptual_physics",
        "econometrics",
        "electrical_engineering",
        "elementary_mathematics",
        "formal_logic",
        "global_facts",
        "high_school_biology",
        "high_school_chemistry",
        "high_school_computer_science",
        "high_school_european_history",
        "high_school_geography",
        "high_school_government_and_politics",
        "high_school_macroeconomics",
        "high_school_mathematics",
        "high_school_microeconomics",
        "high_school_physics",
        "high_school_psychology",
        "high_school_statistics",
        "high_school_us_history",
        "high_school_world_history",
        "human_aging",
        "human_sexuality",
        "international_law",
        "jurisprudence",
        "logical_fallacies",
        "machine_learning",
        "management",
        "marketing",
        "medical_genetics",
        "miscellaneous",
        "moral_disputes",
        "moral_scenarios",
        "nutrition",
        "philosophy",
        "prehistory",
        "professional_accounting",
        "professional_law",
        "professional_medicine",
        "professional_psychology",
        "public_relations",
        "security_studies",
        "sociology",
        "us_foreign_policy",
        "virology",
        "world_religions",
    }
)
Split = Literal["dev", "val", "test", "auxiliary_train"]
_NAME = re.compile(r"(?P<subject>[a-z][a-z_]*)_(?P<split>dev|val|test)\.csv")

LICENSE = "MIT"
URL = "https://github.com/hendrycks/test"
CITATION = """@inproceedings{hendrycks2021measuring,
  title = {Measuring Massive Multitask Language Understanding},
  author = {Hendrycks, Dan and Burns, Collin and Basart, Steven and Zou, Andy and
            Mazeika, Mantas and Song, Dawn and Steinhardt, Jacob},
  booktitle = {International Conference on Learning Representations (ICLR)},
  year = {2021},
  url = {https://openreview.net/forum?id=d7KBjmI3GmQ}
}"""


class MmluOptions(Options):
    subjects: list[str] = list(MEDICAL_SUBJECTS)
    """MMLU subjects to keep; rows of other subjects are dropped as subject_not_selected."""
    splits: list[Split] = ["dev", "val"]
    """Splits to keep. "test" also needs allow_test: true."""
    allow_test: bool = False
    """Keep test questions (medAlpaca did; it contaminates MMLU evaluation)."""

    @field_validator("subjects")
    @classmethod
    def _known_subjects(cls, value: list[str]) -> list[str]:
        unknown = [s for s in value if s not in ALL_SUBJECTS]
        if unknown:
            raise ValueError(f"unknown MMLU subject(s) {unknown}; known: {', '.join(sorted(ALL_SUBJECTS))}")
        return value

    @model_validator(mode="after")
    def _test_needs_consent(self) -> MmluOptions:
        if "test" in self.splits and not self.allow_test:
            raise ValueError(
                "splits includes 'test': training on MMLU test questions contaminates MMLU evaluation; "
                "set allow_test: true to do it anyway"
            )
        return self


@register(
    "mmlu",
    options=MmluOptions,
    per_file=True,
    produces="records",
    summary="MMLU (hendrycks/test) medical subjects: answer a 4-option multiple-choice question",
    license=LICENSE,
    citation=CITATION,
)
def load(paths: Sequence[Path], options: MmluOptions) -> Iterator[Item]:
    subjects = set(options.subjects)
    splits = set(options.splits)
    for path in paths:
        subject, split = subject_and_split(path)
        yield from _load_file(path, subject, split, subjects, splits, options.allow_test)


def subject_and_split(path: Path) -> tuple[str, str]:
    """('anatomy', 'dev') from anatomy_dev.csv, ('race', 'auxiliary_train') from auxiliary_train/race.csv."""
    m = _NAME.fullmatch(path.name)
    if m:
        return m["subject"], m["split"]
    if path.parent.name == "auxiliary_train" and path.suffix == ".csv":
        return path.stem, "auxiliary_train"
    raise InputError(
        path,
        "cannot tell subject and split from the file name: expected <subject>_<dev|val|test>.csv "
        "(e.g. anatomy_dev.csv) or auxiliary_train/<name>.csv",
    )


def _load_file(
    path: Path, subject: str, split: str, subjects: set[str], splits: set[str], allow_test: bool
) -> Iterator[Item]:
    source = f"mmlu/{subject}"
    for line, row in iter_csv(path, fieldnames=FIELDNAMES):
        at = where(path, line)
        if split == "test" and not (allow_test and "test" in splits):
            yield Drop("test_split", at, f"{subject} test question (set allow_test to keep)")
            continue
        if split not in splits:
            yield Drop("split_not_selected", at, f"split {split}")
            continue
        if subject not in subjects:
            yield Drop("subject_not_selected", at, f"subject {subject}")
            continue
        question = row["question"].strip()
        if not question:
            yield Drop("empty_question", at, "empty question cell")
            continue
        answer = row["answer"].strip()
        if answer not in LETTERS:
            yield Drop("bad_answer", at, f"answer {answer[:20]!r} is not one of A, B, C, D", malformed=True)
            continue
        options = {letter: row[letter].strip() for letter in LETTERS}
        choices = "\n".join(f"{letter}: {text}".rstrip() for letter, text in options.items())
        yield make_record(
            at,
            instruction=INSTRUCTION,
            input=f"{question}\n{choices}",
            output=f"{answer}: {options[answer]}".rstrip(),
            source=source,
            id=content_id(f"{source}:{split}", question, *options.values()),
            meta={
                "subject": subject,
                "split": split,
                "answer": answer,
                "file": path.name,
                "license": LICENSE,
                "url": URL,
            },
        )
