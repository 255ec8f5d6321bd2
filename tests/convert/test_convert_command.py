"""`meadow convert`: only passage sources, an error without any, and its file beside the build."""

from __future__ import annotations

import json
from pathlib import Path

from fake_openai import FakeOpenAI
from typer.testing import CliRunner

from meadow.build import build
from meadow.cli import app

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()


def write_recipe(tmp_path: Path, sources: str, url: str = "http://127.0.0.1:9/v1") -> Path:
    p = tmp_path / "r.yaml"
    p.write_text(
        f"name: conv\noutput_dir: {tmp_path / 'out'}\n"
        f"llm:\n  backend: openai\n  model: fake-model\n  base_url: {url}\n"
        f"  backoff_base: 0.01\n  cache: {tmp_path / 'cache.sqlite'}\n"
        f"sources:\n{sources}"
    )
    return p


CARDS = f"""  cards:
    loader: anki
    path: {REPO / "examples/anki/medical_deck.apkg"}
"""
# wikidoc is 'records or passages': its patient information pages are ready Q/A records
PATIENT_INFO = f"""  patient_info:
    loader: wikidoc
    path: {REPO / "examples/wikidoc/patient_information.xml"}
    options: {{kind: patient_information}}
"""


def test_a_recipe_without_passage_sources_is_an_error(tmp_path):
    res = runner.invoke(app, ["convert", str(write_recipe(tmp_path, PATIENT_INFO))])
    assert res.exit_code == 1 and res.stdout == ""
    assert "no source of the recipe yields passages to rephrase: patient_info gives ready" in res.stderr
    assert not (tmp_path / "out").exists()
    res = runner.invoke(
        app, ["convert", str(write_recipe(tmp_path, CARDS + PATIENT_INFO)), "-s", "patient_info"]
    )
    assert res.exit_code == 1 and "none of the chosen sources yields passages" in res.stderr


def test_default_output_is_beside_the_build_folder_and_survives_a_build(tmp_path):
    with FakeOpenAI() as server:
        recipe = write_recipe(tmp_path, CARDS + PATIENT_INFO, server.url)
        res = runner.invoke(app, ["convert", str(recipe)])
        assert res.exit_code == 0, res.output
        out = tmp_path / "out" / "conv.rephrased.jsonl"
        assert res.stdout.splitlines()[-1] == f"wrote 9 records to {out}"
        assert "cards" in res.stdout and "patient_info" not in res.stdout  # records sources not read
        assert len(out.read_text().splitlines()) == 9
        assert server.total == 9
        build(recipe, progress=False)
    assert (tmp_path / "out" / "conv" / "merged_medical_meadow.json").exists()
    assert [json.loads(line)["source"] for line in out.read_text().splitlines()][0].startswith("anki")
