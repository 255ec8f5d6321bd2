"""MMLU: the headerless CSVs ``<subject>_<split>.csv`` (``question,A,B,C,D,answer``) of MMLU's
``data.tar``, as the ``mmlu`` source reads them (meadow.sources.mmlu).

Any split is read (evaluation may read test); files of subjects not in ``subjects`` (default: the
six medical subjects) are skipped. Benchmark name ``mmlu``; the subject and split are in ``meta``.
"""

from __future__ import annotations

import logging
from pathlib import Path

from pydantic import Field

from meadow import sources
from meadow.benchmarks import Loaded, Options, make_question, register
from meadow.sources import _common
from meadow.sources import mmlu as source

log = logging.getLogger(__name__)


class MmluOptions(Options):
    subjects: list[str] | None = Field(
        None, description="mmlu: the subjects to read (default: the six medical subjects)"
    )


@register(
    "mmlu",
    options=MmluOptions,
    summary="MMLU (hendrycks/test) headerless CSVs, the medical subjects unless `subjects` names others",
    license=sources.get("mmlu").license,
    citation=sources.get("mmlu").citation,
)
def load(files: list[Path], options: MmluOptions) -> Loaded:
    wanted = set(options.subjects or source.MEDICAL_SUBJECTS)
    loaded = Loaded()
    for path in files:
        if path.suffix != ".csv":
            continue
        subject, split = source.subject_and_split(path)
        if subject not in wanted:
            log.debug("%s: subject %s not selected", path, subject)
            continue
        for line, row in _common.iter_csv(path, fieldnames=source.FIELDNAMES):
            at = _common.where(path, line)
            choices = {letter: row[letter].strip() for letter in source.LETTERS}
            question = row["question"].strip()
            loaded.questions.append(
                make_question(
                    at,
                    id=_common.content_id(f"mmlu/{subject}:{split}", question, *choices.values()),
                    benchmark="mmlu",
                    question=question,
                    options=choices,
                    answer=row["answer"].strip(),
                    meta={"subject": subject, "split": split, "file": path.name, "line": line},
                )
            )
    return loaded
