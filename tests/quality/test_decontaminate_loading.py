"""Decontamination's benchmark loading: a question that ``meadow eval`` does not score (an image
question, a published slip) is indexed all the same, counted apart; the build's ``--strict`` stops
on a slip (issue #14: medAlpaca's step2.json stopped every v1 build)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from meadow.build import build
from meadow.errors import MeadowError

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "usmle"


def _recipe(tmp_path: Path, question: str) -> Path:
    shutil.copytree(EXAMPLES, tmp_path / "usmle")
    (tmp_path / "iCliniq.json").write_text(
        json.dumps(
            [
                {"input": f"My exam asks: {question}", "answer_icliniq": "Psoriasis."},
                {"input": "I have had a headache for two days.", "answer_icliniq": "Rest and fluids."},
            ]
        ),
        encoding="utf-8",
    )
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        yaml.safe_dump(
            {
                "name": "t",
                "sources": {"s": {"loader": "chatdoctor", "path": "iCliniq.json"}},
                "benchmarks": {"usmle": {"kind": "usmle", "path": "usmle/step?.json"}},
            }
        ),
        encoding="utf-8",
    )
    return recipe


def test_an_unscored_question_is_still_found_in_training_data(tmp_path: Path):
    step1 = json.loads((EXAMPLES / "step1.json").read_text())
    image_question = next(q for q in step1 if q.get("image_url"))["question"]
    recipe = _recipe(tmp_path, image_question)
    m = build(recipe, output_dir=tmp_path / "out", progress=False, base_dir=tmp_path).manifest.to_json()
    assert m["sources"]["s"]["contaminated"] == {"usmle": 1}
    usmle = m["decontamination"]["benchmarks"]["usmle"]
    # the examples of steps 1-3: 8 questions scored, 11 not (images, slips, a repeat), all indexed
    assert (usmle["questions"], usmle["unscored"]) == (8 + 11, 11)
    assert usmle["removed"]["usmle_step1:image_field"] == 1
    assert usmle["removed"]["usmle_step2:merged_options"] == 1


def test_strict_build_stops_on_a_published_slip(tmp_path: Path):
    recipe = _recipe(tmp_path, "A question of no benchmark at all, asked in plain words here.")
    with pytest.raises(MeadowError, match=r"benchmark 'usmle': .*step2\.json \(record 1\), question no 2"):
        build(recipe, output_dir=tmp_path / "out", progress=False, base_dir=tmp_path, strict=True)
