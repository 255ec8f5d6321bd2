"""USMLE self-assessment: medAlpaca's ``stepN.json`` with ``stepN_solutions.json`` (and
``question_with_images.json``) beside it, as the ``usmle`` source reads them (meadow.sources.usmle).

Image questions are removed and counted, as medAlpaca did; so are questions published without
options. Benchmark name ``usmle_step<N>``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from meadow import sources
from meadow.benchmarks import Loaded, Options, make_question, register
from meadow.errors import InputError, MeadowError
from meadow.sources import _common
from meadow.sources import usmle as source


@register(
    "usmle",
    summary="USMLE self-assessment (medAlpaca) stepN.json + solutions, image questions removed",
    license=sources.get("usmle").license,
    citation=sources.get("usmle").citation,
)
def load(files: list[Path], options: Options) -> Loaded:
    loaded = Loaded()
    for path in files:
        m = source._STEP.fullmatch(path.name)
        if not m:  # solutions and the image list are read beside each step file
            continue
        step = int(m.group(1))
        solutions_path = path.with_name(f"step{step}_solutions.json")
        if not solutions_path.is_file():
            raise InputError(path, f"no solutions: {solutions_path.name} is not beside it")
        solutions = source._solutions(solutions_path)
        images_path = path.with_name(source.IMAGES_FILE)
        with_images = source._image_numbers(images_path, step) if images_path.is_file() else set()
        benchmark = f"usmle_step{step}"
        for q, at in _step(path, step, solutions, with_images, loaded.removed):
            loaded.questions.append(make_question(at, benchmark=benchmark, **q))
    if not any(source._STEP.fullmatch(p.name) for p in files):
        raise MeadowError("usmle: no stepN.json among the files")
    return loaded


def _step(
    path: Path, step: int, solutions: dict[str, str], with_images: set[int], removed: Counter[str]
) -> Iterator[tuple[dict[str, Any], str]]:
    for at, q in _common.iter_json_records(path):
        if not isinstance(q, dict):
            raise InputError(at, f"expected an object, found {type(q).__name__}")
        no, question, opts = source._number(q.get("no")), q.get("question"), q.get("options")
        if no is None or not isinstance(question, str) or not isinstance(opts, (dict, list)):
            raise InputError(at, "needs 'no' (a number), 'question' (a string) and 'options'")
        if no in with_images or source._IMAGE_REF.search(question):
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
