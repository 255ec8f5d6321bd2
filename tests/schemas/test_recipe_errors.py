"""Recipe errors a person can act on: one line per problem, the file and line, the closest key."""

from __future__ import annotations

from pathlib import Path

import pytest

from meadow.errors import MeadowError
from meadow.schemas.recipe import load_recipe
from meadow.train.config import load_config

SOURCE = "name: x\nsources:\n  a:\n    loader: cord19\n    path: a.csv\n"


def problems(tmp_path: Path, text: str) -> list[str]:
    """The lines of the error of recipe ``text``, file name cut to ``r.yaml``."""
    path = tmp_path / "r.yaml"
    path.write_text(text)
    with pytest.raises(MeadowError) as info:
        load_recipe(path)
    return str(info.value).replace(str(tmp_path) + "/", "").splitlines()


def test_a_union_value_is_one_line_not_one_per_branch(tmp_path):
    assert problems(tmp_path, SOURCE + '    n: "ten"\n') == [
        "r.yaml: invalid recipe",
        "  r.yaml:6: sources.a.n: expected a positive number or 'all', got 'ten'",
    ]
    lines = problems(tmp_path, "name: x\nsources:\n  a:\n    loader: cord19\n    path: 5\n")
    assert lines[1:] == ["  r.yaml:5: sources.a.path: expected a string or a list of strings, got 5"]


def test_a_union_tag_never_shows_in_the_key(tmp_path):
    lines = problems(tmp_path, SOURCE + "    fetch: {kind: url, url: 'http://x', sha256: 5}\n")
    assert lines[1:] == ["  r.yaml:6: sources.a.fetch.sha256: expected a string, got 5"]


def test_yaml_syntax_errors_name_the_file_and_line(tmp_path):
    (first, *snippet) = problems(tmp_path, "name: x\nsources:\n  a: [\n  b: x: y\n")
    assert first.startswith("r.yaml:4:7: invalid YAML: expected ',' or ']', but got ':'")
    assert "at line 3, column 6" in first and "<unicode string>" not in first
    assert snippet[0].strip() == "b: x: y"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (SOURCE + "near_dedupe: true\n", "  r.yaml:6: near_dedupe: unknown key; did you mean near_dedup?"),
        (SOURCE + "    filtres: {}\n", "  r.yaml:6: sources.a.filtres: unknown key; did you mean filters?"),
        (SOURCE + "llm: {modle: x}\n", "  r.yaml:6: llm.modle: unknown key; did you mean model?"),
        (SOURCE + "xyzzy: 1\n", "  r.yaml:6: xyzzy: unknown key"),
    ],
)
def test_an_unknown_key_names_the_closest_known_one(tmp_path, text, expected):
    assert problems(tmp_path, text)[1:] == [expected]


def test_a_bad_loader_option_lists_the_loaders_options(tmp_path):
    text = "name: x\nsources:\n  a:\n    loader: stackexchange\n    path: a.7z\n    options: {min_scroe: 3}\n"
    assert problems(tmp_path, text)[1:] == [
        "  r.yaml:6: sources.a.options.min_scroe: unknown key; did you mean min_score? "
        "(options of loader 'stackexchange': site, min_score)"
    ]
    assert problems(tmp_path, SOURCE + "    options: {bogus: 1}\n")[1:] == [
        "  r.yaml:6: sources.a.options.bogus: unknown key (options of loader 'cord19': instruction)"
    ]


def test_option_errors_come_with_the_rest_in_line_order(tmp_path):
    text = "name: x\nnear_dedupe: 1\nsources:\n  a:\n    loader: stackexchange\n    path: a.7z\n"
    text += "    options: {min_scroe: 3}\n    n: 0\n"
    lines = problems(tmp_path, text)
    assert [line.split(": ")[1] for line in lines[1:]] == [
        "near_dedupe",
        "sources.a.options.min_scroe",
        "sources.a.n",
    ]


def test_an_unknown_loader_names_the_closest(tmp_path):
    lines = problems(tmp_path, "name: x\nsources:\n  a:\n    loader: stackexchang\n    path: a\n")
    assert lines[1].startswith(
        "  r.yaml:4: sources.a.loader: unknown loader 'stackexchang'; did you mean stackexchange?"
    )


def test_a_train_config_yaml_error_names_the_file_and_line(tmp_path):
    path = tmp_path / "train.yaml"
    path.write_text("lora_r: 4\nlora_alpha: [\n")
    with pytest.raises(MeadowError, match=r"train\.yaml:3:1: invalid YAML: "):
        load_config(path)
