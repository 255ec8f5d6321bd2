"""`meadow recipe-schema` and the schema shipped beside the recipes, which editors read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from meadow.cli import app
from meadow.schemas.recipe import SCHEMA_FILE

REPO = Path(__file__).resolve().parents[2]
RECIPES = sorted((REPO / "recipes").glob("*.yaml"))
runner = CliRunner()


def test_shipped_schema_is_up_to_date():
    res = runner.invoke(app, ["recipe-schema"])
    assert res.exit_code == 0 and res.stderr == ""
    assert (REPO / "recipes" / SCHEMA_FILE).read_text(encoding="utf-8") == res.stdout, (
        "recipes/recipe.schema.json is stale: run `meadow recipe-schema -o recipes/recipe.schema.json`"
    )
    schema = json.loads(res.stdout)
    assert schema["$schema"].endswith("/2020-12/schema") and "sources" in schema["required"]


def test_output_file(tmp_path):
    res = runner.invoke(app, ["recipe-schema", "-o", str(tmp_path / "s.json")])
    assert res.exit_code == 0 and res.stdout == f"wrote {tmp_path / 's.json'}\n"
    assert json.loads((tmp_path / "s.json").read_text())["title"] == "Recipe"


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.name)
def test_shipped_recipes_point_editors_at_the_schema_and_follow_it(recipe):
    jsonschema = pytest.importorskip("jsonschema")
    assert (
        recipe.read_text(encoding="utf-8").splitlines()[0] == f"# yaml-language-server: $schema={SCHEMA_FILE}"
    )
    schema = json.loads((REPO / "recipes" / SCHEMA_FILE).read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator(schema).validate(yaml.safe_load(recipe.read_text(encoding="utf-8")))


def test_schema_rejects_what_the_recipe_model_rejects():
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((REPO / "recipes" / SCHEMA_FILE).read_text(encoding="utf-8"))
    validator = jsonschema.Draft202012Validator(schema)
    good = {"name": "x", "near_dedup": True, "sources": {"a": {"loader": "cord19", "path": "a.csv", "n": 5}}}
    assert validator.is_valid(good)
    assert not validator.is_valid({**good, "near_dedupe": True})
    assert not validator.is_valid(
        {**good, "sources": {"a": {"loader": "cord19", "path": "a.csv", "n": "ten"}}}
    )
