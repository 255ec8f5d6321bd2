"""USMLE self-assessment (medAlpaca): TEST ONLY, for evaluation and decontamination, never training.

Format read: ``medalpaca/medical_meadow_usmle_self_assessment`` as published on the HF Hub, the
files medAlpaca's ``eval/eval_usmle.py`` and ``eval/eval_models.ipynb`` read:

- ``step1.json``, ``step2.json``, ``step3.json``: a JSON array of questions
  ``{"no": 1, "question": str, "options": {"A": str, ...}}`` (``no`` is the question number);
- ``step1_solutions.json`` ...: ``{"<no>": "<letter>", ...}``;
- ``question_with_images.json``: ``{"step1": [no, ...], "step2": [...], "step3": [...]}``, the
  questions that show an image (27/10/13), which medAlpaca excluded; its numbers are matched
  against ``no``, as medAlpaca's notebook does.

The solutions and image files are taken from the input list or, when absent there, from beside
the step file (solutions are required, the image list is optional).

The files were converted from the USMLE's PDFs and carry the conversion's slips; ``read_step``
reads each question once for both readers of this format (this loader and the ``usmle`` benchmark
kind, meadow.benchmarks.usmle) and says, in order, why one cannot be asked (``Problem``):

- ``invalid_question``: not an object, or ``no``/``question``/``options`` of the wrong type;
- ``duplicate`` (the same question again under its number: the first is kept) or
  ``duplicate_number`` (different questions under one number: the solution cannot say which it
  answers, so none is kept);
- image rules: ``image_listed`` (in ``question_with_images.json``), ``image_field`` (the record's own
  ``image`` or ``image_url`` field), ``image_link`` (an image link in the text: markdown
  ``![..](..)``, ``<img``, or a URL of an image file);
- ``no_options`` (published without options, e.g. with the choices inside the question text),
  ``empty_question``, ``invalid_options`` (not letter -> text), ``missing_option`` (a gap in the
  letters, as when one option's text was merged into another's), ``merged_options`` (an option's
  text holds the next option, ``"Pyelonephritis\\n\\nAnswer E: Tubo-ovarian abscess"``);
- ``no_solution``, ``ambiguous_solution`` (the solutions file gives the number twice, with
  different answers), ``answer_not_in_options``.

Repaired where the intent is plain: option keys and solutions in lower case or with spaces or
punctuation (``"b"``, ``"C "``, ``"(D)"``, ``"Answer: E"``), a solution given as the text of one
option, and leading PDF debris before the question (``". \\n"``, see ``clean_question``).

Framing as MedQA's (:func:`meadow.sources.medqa.format_input`): ``instruction`` = "Please answer with
one of the option in the bracket", ``input`` = ``"Q:<question>? \\n{'A': ...},"``, ``output`` =
``"<letter>: <option text>"``; meta ``{"split": "test", "step": n, "has_image": bool, "no": n}``.
Drops: the reasons above; image questions unless ``include_images``. Ids: ``usmle:step<n>:<no>``
(``#2``, ``#3`` appended to a repeated number).

Registered with ``test_only=True``: a recipe may not use it as training data.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import Field

from meadow.errors import InputError
from meadow.records import Record
from meadow.sources import Drop, Options, register
from meadow.sources._common import (
    MEDALPACA_CITATION,
    content_id,
    iter_json_records,
    json_error_text,
    make_record,
    open_input,
)
from meadow.sources.medqa import INSTRUCTION, format_input

SOURCE = "usmle"
IMAGES_FILE = "question_with_images.json"
IMAGE_FIELDS = ("image", "image_url")
"""A question record with one of these fields (not empty) shows an image."""
_STEP = re.compile(r"step(\d+)\.json", re.IGNORECASE)
_SOLUTIONS = re.compile(r"step(\d+)_solutions\.json", re.IGNORECASE)
_IMAGE_REF = re.compile(
    r"!\[[^\]]*\]\([^)]*\)|<img\b|https?://\S+?\.(?:png|jpe?g|gif|svg|bmp|tiff?)\b", re.IGNORECASE
)
_LEADING_DEBRIS = re.compile(r"\A\s*[.,;:](?:[\s.,;:])*(?=[A-Z0-9])")
"""Punctuation before the first word, as the PDF conversion left it (step3's first question starts
``". \\n"``); only stripped when a capital letter or a digit follows, so an opening ellipsis or a
quote stays."""
_LETTER = re.compile(r"\(?\s*([A-Za-z])\s*[).:]?")
"""An option letter as a key or a solution: ``A``, ``a``, ``A.``, ``(A)``, ``A:`` (spaces stripped)."""
_ANSWER_PREFIX = re.compile(r"(?:the\s+)?(?:correct\s+)?answer(?:\s+is)?\s*:?\s*", re.IGNORECASE)
_MERGED = re.compile(
    r"\n\s*(?:[Aa]nswer\s+)?\(?([A-Z])\)?\s*[:.)]\s+\S|\b[Aa]nswer\s+\(?([A-Z])\)?\s*[:.)]\s*\S"
)
"""Another option inside an option's text: a new line starting with a letter marker, or "Answer E:"."""

CITATION = MEDALPACA_CITATION


class UsmleOptions(Options):
    include_images: bool = Field(
        False,
        description="keep questions that show an image (medAlpaca removed them); meta has_image marks them",
    )


@register(
    SOURCE,
    options=UsmleOptions,
    produces="records",
    summary="USMLE self-assessment Steps 1-3 (medAlpaca's eval set): TEST ONLY, evaluation/decontamination",
    license="questions (c) USMLE (FSMB/NBME) sample materials; redistributed by medAlpaca on the HF Hub",
    citation=CITATION,
    test_only=True,
)
def load(paths: Sequence[Path], options: UsmleOptions) -> Iterator[Record | Drop]:
    paths = [Path(p) for p in paths]
    steps: list[tuple[int, Path]] = []
    solutions: dict[int, Path] = {}
    images: Path | None = None
    for path in paths:
        if m := _STEP.fullmatch(path.name):
            steps.append((int(m.group(1)), path))
        elif m := _SOLUTIONS.fullmatch(path.name):
            solutions[int(m.group(1))] = path
        elif path.name == IMAGES_FILE:
            images = path
        else:
            raise InputError(
                path, f"unexpected file: expected stepN.json, stepN_solutions.json or {IMAGES_FILE}"
            )
    for step, path in steps:
        solutions_path = solutions.get(step, path.with_name(f"step{step}_solutions.json"))
        if not solutions_path.is_file():
            raise InputError(path, f"no solutions: {solutions_path.name} is neither an input nor beside it")
        images_path = images or path.with_name(IMAGES_FILE)
        with_images = image_numbers(images_path, step) if images_path.is_file() else set()
        for item in read_step(path, step, read_solutions(solutions_path), with_images):
            yield _record(item, options)


def _record(item: StepItem, options: UsmleOptions) -> Record | Drop:
    problem = next((p for p in item.problems if not (p.image and options.include_images)), None)
    if problem is not None:
        return Drop(problem.reason, item.at, problem.detail, malformed=problem.malformed)
    assert item.answer is not None and item.no is not None
    return make_record(
        item.at,
        instruction=INSTRUCTION,
        input=format_input(item.question, item.options),
        output=f"{item.answer}: {item.options[item.answer]}",
        source=SOURCE,
        id=item.id,
        meta={
            "split": "test",
            "step": item.step,
            "has_image": item.has_image,
            "no": item.no,
            "file": item.file,
        },
    )


# --------------------------------------------------------------------------- reading the files


def read_json(path: Path, object_pairs_hook: Callable[[list[tuple[str, Any]]], Any] | None = None) -> Any:
    """A whole JSON file; InputError naming the file (and line) when it is empty or invalid."""
    with open_input(path, expected="a JSON object") as f:
        data = f.read()
    try:
        return json.loads(data.decode("utf-8-sig"), object_pairs_hook=object_pairs_hook)
    except UnicodeDecodeError as err:
        raise InputError(path, f"invalid UTF-8 at byte {err.start} ({err.reason})") from None
    except json.JSONDecodeError as err:
        raise InputError(
            path, f"invalid or truncated JSON: {json_error_text(err)}", line=err.lineno
        ) from None


@dataclass
class Solutions:
    """A ``stepN_solutions.json``: question number -> the answer as published (stripped)."""

    path: Path
    answers: dict[str, str]
    ambiguous: dict[str, list[str]] = field(default_factory=dict)
    """Numbers given twice with different answers, and those answers."""


class _Pairs(list):  # type: ignore[type-arg]
    """A JSON object as its (key, value) pairs, so that a key given twice is seen."""


def read_solutions(path: Path) -> Solutions:
    data = read_json(path, object_pairs_hook=_Pairs)
    if not isinstance(data, _Pairs) or not all(isinstance(v, str) for _, v in data):
        raise InputError(path, 'expected an object of question number -> letter, e.g. {"1": "A"}')
    solutions = Solutions(path, {})
    for key, value in data:
        no, answer = key.strip(), value.strip()
        if no in solutions.answers and _same_answer(solutions.answers[no]) != _same_answer(answer):
            solutions.ambiguous.setdefault(no, [solutions.answers[no]]).append(answer)
        solutions.answers.setdefault(no, answer)
    return solutions


def _same_answer(answer: str) -> str:
    return _letter(answer) or _text_key(answer)


def image_numbers(path: Path, step: int) -> set[int]:
    data = read_json(path)
    numbers = data.get(f"step{step}", []) if isinstance(data, dict) else None
    if not isinstance(numbers, list) or not all(
        isinstance(n, int) and not isinstance(n, bool) for n in numbers
    ):
        raise InputError(path, f'expected {{"step{step}": [question numbers], ...}}')
    return set(numbers)


def step_of(path: Path) -> int | None:
    """N for a ``stepN.json``, else None."""
    m = _STEP.fullmatch(path.name)
    return int(m.group(1)) if m else None


# --------------------------------------------------------------------------- one question


@dataclass(frozen=True)
class Problem:
    """Why a question cannot be asked: a drop reason, what is wrong, whether the input is
    malformed (as opposed to a question left out on purpose), and whether it is an image rule."""

    reason: str
    detail: str
    malformed: bool = False
    image: bool = False


@dataclass(frozen=True)
class StepItem:
    """One record of a ``stepN.json``, cleaned: the question text (empty when it has none), the
    options by letter, the answer letter, and its problems in order of precedence (none: it can be
    asked)."""

    step: int
    file: str
    at: str
    id: str
    no: int | None
    question: str
    options: dict[str, str]
    answer: str | None
    problems: tuple[Problem, ...]

    @property
    def has_image(self) -> bool:
        return any(p.image for p in self.problems)


def clean_question(text: str) -> str:
    """The question without surrounding whitespace and without the PDF debris before its first word."""
    return _LEADING_DEBRIS.sub("", text).strip()


def _letter(value: str) -> str | None:
    m = _LETTER.fullmatch(value.strip())
    return m.group(1).upper() if m else None


def answer_letter(answer: str, options: dict[str, str]) -> str | None:
    """The letter a published solution means: ``"C"``, ``"c"``, ``"(C)"``, ``"Answer: C"``, or
    the text of exactly one option; None when it means none."""
    letter = _letter(_ANSWER_PREFIX.sub("", answer, count=1)) or _letter(answer)
    if letter is not None:
        return letter
    wanted = _text_key(answer)
    same = [k for k, v in options.items() if _text_key(v) == wanted]
    return same[0] if len(same) == 1 else None


def _text_key(text: str) -> str:
    return " ".join(text.casefold().split()).rstrip(".")


def _options(raw: Any) -> tuple[dict[str, str], Problem | None]:
    """Letter -> text (letters upper case, texts stripped), or the problem with them."""
    if not isinstance(raw, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in raw.items()
    ):
        return {}, Problem("invalid_options", "'options' must be an object of letter -> text", True)
    options: dict[str, str] = {}
    for key, text in raw.items():
        letter = _letter(key)
        if letter is None or letter in options:
            what = "not a letter" if letter is None else "a letter given twice"
            return {}, Problem("invalid_options", f"option key {key!r} is {what}", True)
        options[letter] = text.strip()
    if len(options) < 2:
        return {}, Problem("invalid_options", f"only {len(options)} option", True)
    expected = [chr(ord("A") + i) for i in range(len(options))]
    if sorted(options) != expected:
        missing = sorted(set(expected) - set(options))
        return options, Problem(
            "missing_option",
            f"option {', '.join(missing)} missing (letters {', '.join(options)})",
            True,
        )
    for letter, text in options.items():
        if m := _MERGED.search(text):
            return options, Problem(
                "merged_options",
                f"option {letter} holds another option: {text[m.start() :].strip()[:60]!r}",
                True,
            )
    return options, None


def _parse(q: Any) -> tuple[int | None, str | None, Any, Problem | None]:
    """A record's number, question and raw options, or why they cannot be read."""
    if not isinstance(q, dict):
        problem = Problem("invalid_question", f"expected an object, found {type(q).__name__}", True)
        return None, None, None, problem
    no, question, opts = _number(q.get("no")), q.get("question"), q.get("options")
    if no is None or not isinstance(question, str) or not isinstance(opts, (dict, list)):
        problem = Problem(
            "invalid_question", "needs 'no' (a number), 'question' (a string) and 'options'", True
        )
        return no, question if isinstance(question, str) else None, opts, problem
    return no, question, opts, None


def read_step(path: Path, step: int, solutions: Solutions, with_images: set[int]) -> list[StepItem]:
    """Every record of ``stepN.json`` as a ``StepItem``, in file order (a step file holds a few
    hundred questions at most: it is read whole, to find repeated numbers)."""
    records = list(iter_json_records(path))
    parsed = [_parse(q) for _, q in records]
    numbered: dict[int, list[int]] = {}  # question number -> the records that carry it
    for i, (no, _, _, problem) in enumerate(parsed):
        if no is not None and problem is None:
            numbered.setdefault(no, []).append(i)
    items = []
    for i, ((at, record), (no, question, opts, problem)) in enumerate(zip(records, parsed, strict=True)):
        text = clean_question(question) if question is not None else ""
        same_number = numbered.get(no, [i]) if no is not None and problem is None else [i]
        k = same_number.index(i) + 1
        if no is None:
            item_id = content_id(f"{SOURCE}:step{step}", text)
        else:
            item_id = f"{SOURCE}:step{step}:{no}" + (f"#{k}" if k > 1 else "")
            at = f"{at}, question no {no}"
        if problem is not None:
            items.append(StepItem(step, path.name, at, item_id, no, text, {}, None, (problem,)))
            continue
        assert no is not None and question is not None
        problems: list[Problem] = []
        if len(same_number) > 1:
            if any(records[j][1] != records[same_number[0]][1] for j in same_number):
                what = f"{len(same_number)} different questions are numbered {no}"
                problems.append(Problem("duplicate_number", what, True))
            elif k > 1:
                problems.append(Problem("duplicate", f"the same question as the first numbered {no}"))
        image = _image_rule(no, record, question, with_images)
        if image is not None:
            problems.append(image)
        options, answer = {}, None
        if not opts:
            problems.append(Problem("no_options", "published without answer options"))
        elif not text:
            problems.append(Problem("empty_question", "'question' is empty"))
        else:
            options, option_problem = _options(opts)
            if option_problem is not None:
                problems.append(option_problem)
            answer, answer_problem = _answer(no, solutions, options)
            if answer_problem is not None and option_problem is None:
                problems.append(answer_problem)
        items.append(StepItem(step, path.name, at, item_id, no, text, options, answer, tuple(problems)))
    return items


def _image_rule(no: int, record: dict[str, Any], question: str, with_images: set[int]) -> Problem | None:
    if no in with_images:
        return Problem("image_listed", f"question {no} is in {IMAGES_FILE}", image=True)
    fields = [f for f in IMAGE_FIELDS if record.get(f)]
    if fields:
        return Problem("image_field", f"the record has an image ({fields[0]!r})", image=True)
    if _IMAGE_REF.search(question):
        return Problem("image_link", "the question's text links an image", image=True)
    return None


def _answer(no: int, solutions: Solutions, options: dict[str, str]) -> tuple[str | None, Problem | None]:
    key = str(no)
    if key in solutions.ambiguous:
        answers = " and ".join(repr(a) for a in solutions.ambiguous[key])
        return None, Problem("ambiguous_solution", f"{solutions.path.name} gives {no} twice: {answers}", True)
    published = solutions.answers.get(key)
    if published is None:
        return None, Problem("no_solution", f"question {no} missing from {solutions.path.name}", True)
    letter = answer_letter(published, options)
    if letter is None or letter not in options:
        return None, Problem(
            "answer_not_in_options",
            f"answer {published!r} is not one of the options {sorted(options)}",
            True,
        )
    return letter, None


def _number(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None
