"""MedQA: JSON Lines of ``question``, ``options``, ``answer_idx`` and ``answer``, 4 or 5 options, as
the ``medqa`` source reads them (meadow.sources.medqa). Benchmark name ``medqa_<n>opt`` by the
number of options; the split (from the file name) is in ``meta``.
"""

from __future__ import annotations

from pathlib import Path

from meadow import sources
from meadow.benchmarks import Loaded, Options, make_question, register
from meadow.errors import InputError
from meadow.sources import _common
from meadow.sources.medqa import split_of


@register(
    "medqa",
    summary="MedQA (jind11/MedQA) JSON Lines, 4 or 5 options: benchmarks medqa_4opt, medqa_5opt",
    license=sources.get("medqa").license,
    citation=sources.get("medqa").citation,
)
def load(files: list[Path], options: Options) -> Loaded:
    loaded = Loaded()
    for path in files:
        split = split_of(path)
        for at, row in _common.iter_json_records(path):
            if not isinstance(row, dict):
                raise InputError(at, f"expected an object, found {type(row).__name__}")
            choices = row.get("options")
            if not isinstance(choices, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in choices.items()
            ):
                raise InputError(at, "'options' must be an object of strings")
            question, answer_idx = row.get("question"), row.get("answer_idx")
            if not isinstance(question, str) or not isinstance(answer_idx, str):
                raise InputError(at, "'question' and 'answer_idx' must be strings")
            answer = row.get("answer")
            if (
                isinstance(answer, str)
                and answer_idx in choices
                and choices[answer_idx].strip() != answer.strip()
            ):
                raise InputError(at, f"answer {answer!r} != option {answer_idx}: {choices[answer_idx]!r}")
            loaded.questions.append(
                make_question(
                    at,
                    id=_common.content_id("medqa", question, *(f"{k}:{v}" for k, v in choices.items())),
                    benchmark=f"medqa_{len(choices)}opt",
                    question=question.strip(),
                    options={k: v.strip() for k, v in choices.items()},
                    answer=answer_idx.strip(),
                    meta={"split": split, "meta_info": row.get("meta_info"), "file": path.name},
                )
            )
    return loaded
