"""USMLE self-assessment: medAlpaca's ``stepN.json`` with ``stepN_solutions.json`` (and
``question_with_images.json``) beside it, read question by question as the ``usmle`` source reads
them (meadow.sources.usmle.read_step, which lists the problems it finds).

A question with a problem is not scored and is counted under the problem's reason: image questions
(``image_listed``, ``image_field``, ``image_link``), as medAlpaca removed them; questions published
without options; repeats of a question; and the conversion's slips (an answer key naming no option,
an option merged into another...), which are ``malformed``: a warning names the file and question
(``--strict`` makes it an error). All of them keep their text for decontamination. Benchmark name
``usmle_step<N>``.
"""

from __future__ import annotations

from pathlib import Path

from meadow import sources
from meadow.benchmarks import Loaded, Options, Unscored, make_question, register
from meadow.errors import InputError, MeadowError
from meadow.sources import usmle as source


@register(
    "usmle",
    summary="USMLE self-assessment (medAlpaca) stepN.json + solutions, image questions removed",
    license=sources.get("usmle").license,
    citation=sources.get("usmle").citation,
)
def load(files: list[Path], options: Options) -> Loaded:
    loaded = Loaded()
    steps = [(step, path) for path in files if (step := source.step_of(path)) is not None]
    if not steps:
        raise MeadowError("usmle: no stepN.json among the files")
    for step, path in steps:  # solutions and the image list are read beside each step file
        solutions_path = path.with_name(f"step{step}_solutions.json")
        if not solutions_path.is_file():
            raise InputError(path, f"no solutions: {solutions_path.name} is not beside it")
        images_path = path.with_name(source.IMAGES_FILE)
        with_images = source.image_numbers(images_path, step) if images_path.is_file() else set()
        benchmark = f"usmle_step{step}"
        for item in source.read_step(path, step, source.read_solutions(solutions_path), with_images):
            if item.problems:
                problem = item.problems[0]
                loaded.unscore(
                    Unscored(
                        id=item.id,
                        benchmark=benchmark,
                        reason=problem.reason,
                        at=item.at,
                        detail=problem.detail,
                        question=item.question,
                        options=tuple(item.options.values()),
                        malformed=problem.malformed,
                    )
                )
                continue
            loaded.questions.append(
                make_question(
                    item.at,
                    id=item.id,
                    benchmark=benchmark,
                    question=item.question,
                    options=item.options,
                    answer=item.answer,
                    meta={"step": step, "no": item.no, "file": path.name},
                )
            )
    return loaded
