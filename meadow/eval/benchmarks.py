"""Benchmark questions, read from each benchmark's published format.

- ``mmlu``: MMLU's headerless CSVs ``<subject>_<split>.csv`` (``question,A,B,C,D,answer``); any
  split (evaluation may read test); files of non-medical subjects are skipped unless named in
  ``subjects``. Benchmark name ``mmlu``; the subject is in ``meta``.
- ``medqa``: MedQA JSON Lines (``question``, ``options``, ``answer_idx``, ``answer``), 4 or 5
  options. Benchmark name ``medqa_<n>opt`` by the number of options.
- ``usmle``: medAlpaca's USMLE self-assessment ``stepN.json`` with ``stepN_solutions.json`` (and
  ``question_with_images.json``) beside it. Image questions are removed and counted, as medAlpaca
  did; so are questions published without options. Benchmark name ``usmle_step<N>``.
- ``pubmedqa``: PubMedQA's ``ori_pqal.json`` (PMID -> ``QUESTION``, ``CONTEXTS``,
  ``final_decision``), asked as ``Context: <abstract>\nQuestion: <question>`` with the options
  A yes, B no, C maybe. With ``test_ground_truth.json`` beside it (or among the files) only the
  official 500 test questions are kept (the others are counted as removed) and their labels are
  checked against it. Benchmark name ``pubmedqa``.

Unlike a training build, evaluation never skips a malformed question silently: a bad row raises
InputError naming the file and the line (or record).
"""

from __future__ import annotations

import glob
import logging
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from meadow.errors import InputError, MeadowError
from meadow.sources import _common, mmlu, usmle
from meadow.sources.medqa import split_of

log = logging.getLogger(__name__)

BENCHMARK_KINDS = ("mmlu", "medqa", "usmle", "pubmedqa")
PUBMEDQA_OPTIONS = {"A": "yes", "B": "no", "C": "maybe"}
PUBMEDQA_TEST = "test_ground_truth.json"


class Question(BaseModel):
    """One multiple-choice question."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1)
    benchmark: str = Field(min_length=1)
    """The table column it counts in: ``mmlu``, ``medqa_4opt``, ``usmle_step1``..."""
    question: str = Field(min_length=1)
    options: dict[str, str] = Field(min_length=2)
    """Letter -> option text, in the published order."""
    answer: str
    meta: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _answer_is_an_option(self) -> Question:
        if self.answer not in self.options:
            raise ValueError(f"answer {self.answer!r} is not one of the options {sorted(self.options)}")
        return self


@dataclass
class Loaded:
    """The questions of one benchmark spec, and how many were removed (by reason)."""

    questions: list[Question] = field(default_factory=list)
    removed: Counter[str] = field(default_factory=Counter)
    files: list[Path] = field(default_factory=list)


def parse_spec(spec: str) -> tuple[str, str]:
    """``"mmlu:data/raw/mmlu_test/data/test/*.csv"`` -> ``("mmlu", glob)``."""
    kind, sep, pattern = spec.partition(":")
    if not sep or kind not in BENCHMARK_KINDS or not pattern:
        raise MeadowError(
            f"benchmark {spec!r}: expected KIND:PATH_OR_GLOB with KIND one of {', '.join(BENCHMARK_KINDS)} "
            "(e.g. mmlu:data/raw/mmlu_test/data/test/*.csv)"
        )
    return kind, pattern


def expand(pattern: str) -> list[Path]:
    """The files a path, folder or glob names, sorted; MeadowError if none."""
    path = Path(pattern).expanduser()
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file())
    else:
        files = sorted(Path(p) for p in glob.glob(str(path), recursive=True) if Path(p).is_file())
    if not files:
        raise MeadowError(f"{pattern}: no such file (nor any file matching it)")
    return files


def load_benchmark(spec: str, *, subjects: Iterable[str] | None = None) -> Loaded:
    """Load every question of a ``KIND:PATH_OR_GLOB`` spec."""
    kind, pattern = parse_spec(spec)
    files = expand(pattern)
    if kind == "mmlu":
        loaded = load_mmlu(files, subjects=subjects)
    elif kind == "medqa":
        loaded = load_medqa(files)
    elif kind == "pubmedqa":
        loaded = load_pubmedqa(files)
    else:
        loaded = load_usmle(files)
    loaded.files = files
    if not loaded.questions:
        raise MeadowError(f"benchmark {spec!r}: no questions in {len(files)} file(s)")
    seen: dict[str, Question] = {}
    for q in loaded.questions:
        if q.id in seen:
            raise MeadowError(f"benchmark {spec!r}: question id {q.id} appears twice (same file read twice?)")
        seen[q.id] = q
    return loaded


def _question(at: str, **fields: Any) -> Question:
    try:
        return Question(**fields)
    except ValueError as err:  # pydantic ValidationError is a ValueError
        errors = getattr(err, "errors", None)
        detail = (
            "; ".join(f"{'.'.join(map(str, e['loc'])) or 'question'}: {e['msg']}" for e in errors())
            if errors
            else str(err)
        )
        raise InputError(at, detail) from None


# --- MMLU --------------------------------------------------------------------------------------


def load_mmlu(files: Iterable[Path], *, subjects: Iterable[str] | None = None) -> Loaded:
    wanted = set(subjects or mmlu.MEDICAL_SUBJECTS)
    loaded = Loaded()
    for path in files:
        if path.suffix != ".csv":
            continue
        subject, split = mmlu.subject_and_split(path)
        if subject not in wanted:
            log.debug("%s: subject %s not selected", path, subject)
            continue
        for line, row in _common.iter_csv(path, fieldnames=mmlu.FIELDNAMES):
            at = _common.where(path, line)
            options = {letter: row[letter].strip() for letter in mmlu.LETTERS}
            question = row["question"].strip()
            loaded.questions.append(
                _question(
                    at,
                    id=_common.content_id(f"mmlu/{subject}:{split}", question, *options.values()),
                    benchmark="mmlu",
                    question=question,
                    options=options,
                    answer=row["answer"].strip(),
                    meta={"subject": subject, "split": split, "file": path.name, "line": line},
                )
            )
    return loaded


# --- MedQA -------------------------------------------------------------------------------------


def load_medqa(files: Iterable[Path]) -> Loaded:
    loaded = Loaded()
    for path in files:
        split = split_of(path)
        for at, row in _common.iter_json_records(path):
            if not isinstance(row, dict):
                raise InputError(at, f"expected an object, found {type(row).__name__}")
            options = row.get("options")
            if not isinstance(options, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in options.items()
            ):
                raise InputError(at, "'options' must be an object of strings")
            question, answer_idx = row.get("question"), row.get("answer_idx")
            if not isinstance(question, str) or not isinstance(answer_idx, str):
                raise InputError(at, "'question' and 'answer_idx' must be strings")
            answer = row.get("answer")
            if (
                isinstance(answer, str)
                and answer_idx in options
                and options[answer_idx].strip() != answer.strip()
            ):
                raise InputError(at, f"answer {answer!r} != option {answer_idx}: {options[answer_idx]!r}")
            loaded.questions.append(
                _question(
                    at,
                    id=_common.content_id("medqa", question, *(f"{k}:{v}" for k, v in options.items())),
                    benchmark=f"medqa_{len(options)}opt",
                    question=question.strip(),
                    options={k: v.strip() for k, v in options.items()},
                    answer=answer_idx.strip(),
                    meta={"split": split, "meta_info": row.get("meta_info"), "file": path.name},
                )
            )
    return loaded


# --- USMLE self-assessment ---------------------------------------------------------------------


def load_usmle(files: Iterable[Path]) -> Loaded:
    loaded = Loaded()
    for path in files:
        m = usmle._STEP.fullmatch(path.name)
        if not m:  # solutions and the image list are read beside each step file
            continue
        step = int(m.group(1))
        solutions_path = path.with_name(f"step{step}_solutions.json")
        if not solutions_path.is_file():
            raise InputError(path, f"no solutions: {solutions_path.name} is not beside it")
        solutions = usmle._solutions(solutions_path)
        images_path = path.with_name(usmle.IMAGES_FILE)
        with_images = usmle._image_numbers(images_path, step) if images_path.is_file() else set()
        benchmark = f"usmle_step{step}"
        for q, at in _usmle_step(path, step, solutions, with_images, loaded.removed):
            loaded.questions.append(_question(at, benchmark=benchmark, **q))
    if not any(usmle._STEP.fullmatch(p.name) for p in files):
        raise MeadowError("usmle: no stepN.json among the files")
    return loaded


def _usmle_step(
    path: Path, step: int, solutions: dict[str, str], with_images: set[int], removed: Counter[str]
) -> Iterator[tuple[dict[str, Any], str]]:
    for at, q in _common.iter_json_records(path):
        if not isinstance(q, dict):
            raise InputError(at, f"expected an object, found {type(q).__name__}")
        no, question, opts = usmle._number(q.get("no")), q.get("question"), q.get("options")
        if no is None or not isinstance(question, str) or not isinstance(opts, (dict, list)):
            raise InputError(at, "needs 'no' (a number), 'question' (a string) and 'options'")
        if no in with_images or usmle._IMAGE_REF.search(question):
            removed[f"usmle_step{step}:has_image"] += 1
            continue
        if not opts:
            removed[f"usmle_step{step}:no_options"] += 1
            continue
        if not isinstance(opts, dict):
            raise InputError(at, "'options' must be an object of letter -> text")
        letter = solutions.get(str(no))
        if letter is None:
            raise InputError(at, f"question {no} missing from step{step}_solutions.json")
        yield (
            {
                "id": f"usmle:step{step}:{no}",
                "question": question.strip(),
                "options": opts,
                "answer": letter,
                "meta": {"step": step, "no": no, "file": path.name},
            },
            f"{at}, question no {no}",
        )


# --- PubMedQA ----------------------------------------------------------------------------------


def load_pubmedqa(files: Iterable[Path]) -> Loaded:
    files = list(files)
    loaded = Loaded()
    data_files = [p for p in files if p.suffix == ".json" and p.name != PUBMEDQA_TEST]
    if not data_files:
        raise MeadowError(f"pubmedqa: no data file (e.g. ori_pqal.json) among {[p.name for p in files]}")
    for path in data_files:
        truth_path = next((p for p in files if p.name == PUBMEDQA_TEST), path.with_name(PUBMEDQA_TEST))
        truth = usmle._read_json(truth_path) if truth_path.is_file() else None
        if truth is not None and not isinstance(truth, dict):
            raise InputError(truth_path, 'expected an object of PMID -> "yes" | "no" | "maybe"')
        data = usmle._read_json(path)
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
            letter = {v: k for k, v in PUBMEDQA_OPTIONS.items()}.get(str(decision).strip().lower())
            if letter is None:
                raise InputError(at, f"final_decision {decision!r} is not yes, no or maybe")
            if truth is not None and truth[pmid] != PUBMEDQA_OPTIONS[letter]:
                raise InputError(at, f"final_decision {decision!r} != {truth[pmid]!r} in {truth_path.name}")
            context = " ".join(c.strip() for c in contexts)
            loaded.questions.append(
                _question(
                    at,
                    id=f"pubmedqa:{pmid}",
                    benchmark="pubmedqa",
                    question=f"Context: {context}\nQuestion: {question.strip()}",
                    options=dict(PUBMEDQA_OPTIONS),
                    answer=letter,
                    meta={"pmid": pmid, "file": path.name, "test_set": truth is not None},
                )
            )
        if truth is not None:
            missing = sorted(set(truth) - set(data))
            if missing:
                raise InputError(truth_path, f"{len(missing)} PMID(s) not in {path.name}, e.g. {missing[0]}")
    return loaded
