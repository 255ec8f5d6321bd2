"""`meadow sources LOADER`: a loader's options, license and a recipe entry that is valid as shown."""

from __future__ import annotations

import json

import pytest
import yaml
from typer.testing import CliRunner

from meadow import sources
from meadow.cli import app
from meadow.cli.render import example_entry
from meadow.schemas.recipe import Recipe

runner = CliRunner()


def test_a_loader_shows_its_options_license_and_an_example_entry():
    res = runner.invoke(app, ["sources", "wikidoc"])
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    (kind,) = [line for line in lines if "│ kind " in line]
    assert "'textbook' | 'patient_information'" in kind and "required" in kind and "subsite" in kind
    (min_chars,) = [line for line in lines if "│ min_chars " in line]
    assert "int" in min_chars and "100" in min_chars and "too_short" in min_chars
    assert any(line.startswith("license: WikiDoc page text: CC BY-SA 3.0") for line in lines)
    assert (
        "  loader: wikidoc" in lines
        and "    kind: textbook  # required: textbook or patient_information" in lines
    )


def test_option_docstrings_are_descriptions_and_defaults_are_yaml():
    res = runner.invoke(app, ["sources", "anki", "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    (images,) = [o for o in data["options"] if o["name"] == "drop_images"]
    assert images["type"] == "bool" and images["default"] is True and images["required"] is False
    assert images["description"].startswith("Drop notes with an image")
    assert "    drop_images: true" in data["example"].splitlines()


@pytest.mark.parametrize("name", [n for n, s in sources.registry().items() if not s.test_only])
def test_every_example_entry_is_a_valid_recipe_source(name):
    entry = yaml.safe_load(example_entry(sources.get(name)))
    recipe = Recipe.model_validate({"name": "x", "sources": entry})
    recipe.sources[name].parsed_options()


def test_an_unknown_loader_is_named_with_the_closest():
    res = runner.invoke(app, ["sources", "ank"])
    assert res.exit_code == 1 and "unknown loader 'ank'; did you mean anki?" in res.stderr
