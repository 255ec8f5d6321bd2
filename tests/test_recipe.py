from pathlib import Path

import pytest

from meadow.errors import MeadowError
from meadow.schemas.recipe import load_recipe, resolve_paths

REPO = Path(__file__).resolve().parents[1]


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "r.yaml"
    p.write_text(text)
    return p


def test_minimal_recipe_defaults(tmp_path):
    r = load_recipe(write(tmp_path, "name: x\nsources:\n  c:\n    loader: cord19\n    path: a.csv\n"))
    assert r.seed == 42 and r.on_error == "skip" and r.dedup == "exact"
    assert r.sources["c"].n == "all"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "name: x\nsources:\n  c:\n    loader: cord19\n    path: a.csv\n    nn: 3\n",
            ["r.yaml:6: sources.c.nn: unknown key"],
        ),
        (
            "name: x\nseeed: 1\nsources:\n  c:\n    loader: cord19\n    path: a.csv\n",
            ["r.yaml:2: seeed: unknown key"],
        ),
        (
            "name: x\nsources:\n  c:\n    loader: nope\n    path: a.csv\n",
            ["r.yaml:4: sources.c.loader: unknown loader 'nope'"],
        ),
        ("name: x\nsources:\n  c:\n    loader: cord19\n", ["sources.c.path: required key is missing"]),
        (
            "name: x\nsources:\n  c:\n    loader: cord19\n    path: a.csv\n    n: 0\n",
            ["r.yaml:6: sources.c.n: expected a positive number or 'all', got 0"],
        ),
        ("name: x\nsources:\n  c:\n    loader: cord19\n    path: a.csv\n    n: some\n", ["sources.c.n"]),
        (
            "name: x\nsources:\n  c:\n    loader: cord19\n    path: a.csv\n    options:\n      bogus: 1\n",
            ["r.yaml:7: sources.c.options.bogus: unknown key"],
        ),
        ("name: x y\nsources:\n  c:\n    loader: cord19\n    path: a.csv\n", ["r.yaml:1: name:"]),
        ("name: x\nsources: {}\n", ["sources:"]),
        ("- a\n- b\n", ["a recipe must be a YAML mapping"]),
        ("name: [unclosed\n", ["invalid YAML"]),
    ],
)
def test_bad_recipes_name_file_key_and_line(tmp_path, text, expected):
    with pytest.raises(MeadowError) as info:
        load_recipe(write(tmp_path, text))
    message = str(info.value)
    assert str(tmp_path / "r.yaml") in message
    for part in expected:
        assert part in message


def test_missing_recipe_file(tmp_path):
    with pytest.raises(MeadowError, match="recipe file not found"):
        load_recipe(tmp_path / "nope.yaml")


def test_resolve_paths_globs_sorted_and_missing(tmp_path):
    (tmp_path / "b.csv").write_text("x")
    (tmp_path / "a.csv").write_text("x")
    r = load_recipe(write(tmp_path, "name: x\nsources:\n  c:\n    loader: cord19\n    path: '*.csv'\n"))
    assert [p.name for p in resolve_paths("c", r.sources["c"], tmp_path)] == ["a.csv", "b.csv"]
    r = load_recipe(write(tmp_path, "name: x\nsources:\n  c:\n    loader: cord19\n    path: none/*.csv\n"))
    with pytest.raises(MeadowError, match="source 'c': no file matches 'none/\\*.csv'"):
        resolve_paths("c", r.sources["c"], tmp_path)


@pytest.mark.parametrize("name", ["demo.yaml", "demo_llm.yaml", "v1.yaml"])
def test_shipped_recipes_are_valid(name):
    recipe = load_recipe(REPO / "recipes" / name)
    assert recipe.sources
