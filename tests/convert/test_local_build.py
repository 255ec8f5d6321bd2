"""`meadow build` with the default LLM settings: the embedded SmolLM2, in-process, offline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from meadow.build import build
from meadow.schemas.outputs import JSON_NAME

pytestmark = pytest.mark.slow


def test_default_llm_is_the_embedded_smollm2_and_it_rephrases_real_flashcards(tmp_path, meadow_cache):
    notes = tmp_path / "cards.txt"
    notes.write_text(
        "#separator:tab\n#html:false\n"
        "What is the antidote for acetaminophen overdose?\tN-acetylcysteine\n"
        "Which nerve is injured in wrist drop?\tThe radial nerve\n"
    )
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        f"name: local\noutput_dir: {tmp_path / 'out'}\n"
        f"llm:\n  cache: {tmp_path / 'llm.sqlite'}\n  max_tokens: 96\n"
        f"sources:\n  cards:\n    loader: anki\n    path: {notes}\n"
    )
    result = build(recipe, progress=False)
    m = result.manifest.to_json()
    assert m["llm"]["backend"].startswith("local:SmolLM2-135M-Instruct@")
    llm = m["sources"]["cards"]["llm"]
    assert llm["passages"] == 2 and llm["requests"] >= 2
    rows = json.loads((result.out_dir / JSON_NAME).read_text())
    assert rows, f"SmolLM2 rephrased no card: {llm['failed']}"
    assert all(r["input"].endswith("?") and r["output"] for r in rows)
    # The whole build again: every answer from the cache, identical output.
    again = build(recipe, output_dir=tmp_path / "again", progress=False)
    assert again.manifest.to_json()["sources"]["cards"]["llm"]["requests"] == 0
    assert (again.out_dir / JSON_NAME).read_bytes() == (result.out_dir / JSON_NAME).read_bytes()
    assert Path(meadow_cache).is_dir()


def test_a_fully_cached_build_never_loads_the_model(tmp_path, meadow_cache, monkeypatch):
    from meadow.convert import local

    notes = tmp_path / "cards.txt"
    notes.write_text("#separator:tab\n#html:false\nWhich nerve is injured in wrist drop?\tThe radial nerve\n")
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        f"name: local\noutput_dir: {tmp_path / 'out'}\n"
        f"llm:\n  cache: {tmp_path / 'llm.sqlite'}\n  max_tokens: 96\n"
        f"sources:\n  cards:\n    loader: anki\n    path: {notes}\n"
    )
    first = build(recipe, progress=False)

    def refuse(*args, **kwargs):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(local.LocalBackend, "__init__", refuse)
    again = build(recipe, output_dir=tmp_path / "replayed", replay=True, progress=False)
    assert (again.out_dir / JSON_NAME).read_bytes() == (first.out_dir / JSON_NAME).read_bytes()
