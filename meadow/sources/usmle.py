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
the step file (solutions are required, the image list is optional). A question also counts as
showing an image when its text holds an image link (markdown ``![..](..)``, ``<img``, or a URL of
an image file).

Framing as MedQA's (:func:`meadow.sources.medqa.format_input`): ``instruction`` = "Please answer with
one of the option in the bracket", ``input`` = ``"Q:<question>? \\n{'A': ...},"``, ``output`` =
``"<letter>: <option text>"``; meta ``{"split": "test", "step": n, "has_image": bool, "no": n}``.
Drops: ``has_image`` (unless ``include_images``), ``no_options`` (a question published without
options cannot be asked as multiple choice). Ids: ``usmle:step<n>:<no>``.

Registered with ``test_only=True``: a recipe may not use it as training data.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from pydantic import Field

from meadow.errors import InputError
from meadow.records import Record
from meadow.sources import Drop, Options, register
from meadow.sources._common import (
    MEDALPACA_CITATION,
    iter_json_records,
    json_error_text,
    make_record,
    open_input,
)
from meadow.sources.medqa import INSTRUCTION, format_input

SOURCE = "usmle"
IMAGES_FILE = "question_with_images.json"
_STEP = re.compile(r"step(\d+)\.json", re.IGNORECASE)
_SOLUTIONS = re.compile(r"step(\d+)_solutions\.json", re.IGNORECASE)
_IMAGE_REF = re.compile(
    r"!\[[^\]]*\]\([^)]*\)|<img\b|https?://\S+?\.(?:png|jpe?g|gif|svg|bmp|tiff?)\b", re.IGNORECASE
)

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
        with_images = _image_numbers(images_path, step) if images_path.is_file() else set()
        yield from _step(path, step, _solutions(solutions_path), with_images, options)


def _read_json(path: Path) -> Any:
    with open_input(path, expected="a JSON object") as f:
        data = f.read()
    try:
        return json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError as err:
        raise InputError(path, f"invalid UTF-8 at byte {err.start} ({err.reason})") from None
    except json.JSONDecodeError as err:
        raise InputError(
            path, f"invalid or truncated JSON: {json_error_text(err)}", line=err.lineno
        ) from None


def _solutions(path: Path) -> dict[str, str]:
    data = _read_json(path)
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise InputError(path, 'expected an object of question number -> letter, e.g. {"1": "A"}')
    return {str(k).strip(): v.strip().upper() for k, v in data.items()}


def _image_numbers(path: Path, step: int) -> set[int]:
    data = _read_json(path)
    numbers = data.get(f"step{step}", []) if isinstance(data, dict) else None
    if not isinstance(numbers, list) or not all(
        isinstance(n, int) and not isinstance(n, bool) for n in numbers
    ):
        raise InputError(path, f'expected {{"step{step}": [question numbers], ...}}')
    return set(numbers)


def _number(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def _step(
    path: Path, step: int, solutions: dict[str, str], with_images: set[int], options: UsmleOptions
) -> Iterator[Record | Drop]:
    for at, q in iter_json_records(path):
        if not isinstance(q, dict):
            yield Drop(
                "invalid_question", at, f"expected an object, found {type(q).__name__}", malformed=True
            )
            continue
        no, question, opts = _number(q.get("no")), q.get("question"), q.get("options")
        if no is None or not isinstance(question, str) or not isinstance(opts, (dict, list)):
            yield Drop(
                "invalid_question",
                at,
                "needs 'no' (a number), 'question' (a string) and 'options'",
                malformed=True,
            )
            continue
        at = f"{at}, question no {no}"
        has_image = no in with_images or bool(_IMAGE_REF.search(question))
        if has_image and not options.include_images:
            yield Drop("has_image", at, "the question shows an image")
            continue
        if not opts:
            yield Drop("no_options", at, "published without answer options")
            continue
        if not question.strip():
            yield Drop("empty_question", at, "'question' is empty")
            continue
        if not isinstance(opts, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in opts.items()
        ):
            yield Drop("invalid_question", at, "'options' must be an object of strings", malformed=True)
            continue
        letter = solutions.get(str(no))
        if letter is None:
            yield Drop(
                "no_solution", at, f"question {no} missing from step{step}_solutions.json", malformed=True
            )
            continue
        if letter not in opts:
            yield Drop(
                "answer_not_in_options", at, f"solution {letter!r} not in {sorted(opts)}", malformed=True
            )
            continue
        yield make_record(
            at,
            instruction=INSTRUCTION,
            input=format_input(question, opts),
            output=f"{letter}: {opts[letter]}",
            source=SOURCE,
            id=f"{SOURCE}:step{step}:{no}",
            meta={"split": "test", "step": step, "has_image": has_image, "no": no, "file": path.name},
        )
