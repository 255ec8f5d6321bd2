"""Quality filters: each check on records that must be dropped and records that must pass, the recipe
settings (global, per source, key by key), and a build that counts the drops as filter_<name>."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from meadow import sources
from meadow.build import build
from meadow.errors import MeadowError
from meadow.quality import filters as qf
from meadow.quality.filters import build_filters, first_failure
from meadow.records import Record
from meadow.schemas.outputs import DROPPED_NAME
from meadow.schemas.quality import FilterSettings, merge
from meadow.schemas.recipe import load_recipe
from meadow.text import normalize, words


def rec(
    instruction: str = "What causes anemia?", output: str = "Iron deficiency, among others.", **kw
) -> Record:
    return Record(instruction=instruction, output=output, source="t", id=kw.pop("id", "t:1"), **kw)


def failed(settings: dict, record: Record) -> tuple[str, str] | None:
    out = first_failure(build_filters(FilterSettings.model_validate(settings)), record)
    return None if out is None else (out[0].reason, out[1])


# --------------------------------------------------------------------------- normalisation


def test_words_normalise_case_unicode_punctuation_and_option_letters():
    assert words("A 45-year-old man's ＨＢ is 9.8 g/dL!") == (
        "45",
        "year",
        "old",
        "man",
        "hb",
        "is",
        "9",
        "8",
        "dl",
    )
    assert (
        normalize("(A) Aorta\nB: Vena  cava")
        == normalize("{'A': 'aorta', 'B': 'vena cava'}")
        == "aorta vena cava"
    )
    assert normalize("Type 1 diabetes") != normalize("Type 2 diabetes")
    assert normalize("Fièvre ﬁnale") == "fièvre finale"  # NFKC: the ligature is two letters


# --------------------------------------------------------------------------- defaults and settings


def test_defaults_only_drop_exact_echoes():
    settings = FilterSettings()
    assert [f.name for f in build_filters(settings)] == ["copies_question"]
    assert failed({}, rec(output="x" * 100_000)) is None
    assert failed({}, rec(output="<div>Click here</div> &nbsp; [citation needed]")) is None
    assert (
        failed({}, rec(output="Der Patient hat seit zwei Tagen starke Kopfschmerzen und hohes Fieber."))
        is None
    )


def test_settings_are_checked():
    with pytest.raises(ValueError, match="min_output_chars .* larger than max_output_chars"):
        FilterSettings(min_output_chars=10, max_output_chars=5)
    with pytest.raises(ValueError, match="ISO 639-1"):
        FilterSettings(languages=["english"])
    with pytest.raises(ValueError, match="a tag must not be empty"):
        FilterSettings(exclude_tags=[" "])
    with pytest.raises(MeadowError, match="xx not known to the language identifier"):
        build_filters(FilterSettings(languages=["en", "xx"]))


def test_source_settings_replace_the_global_ones_key_by_key():
    base = FilterSettings(min_output_chars=20, boilerplate=True, languages=["en"])
    override = FilterSettings.model_validate({"min_output_chars": None, "max_output_chars": 500})
    merged = merge(base, override)
    assert merged.min_output_chars is None and merged.max_output_chars == 500  # set: replaced
    assert merged.boilerplate and merged.languages == ["en"]  # not set: the global value
    with pytest.raises(ValueError, match="larger than"):
        merge(FilterSettings(min_output_chars=600), FilterSettings(max_output_chars=500))


def test_recipe_filters_global_and_per_source(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(
        "name: x\nfilters:\n  min_output_chars: 5\n  boilerplate: true\nsources:\n"
        "  a:\n    loader: cord19\n    path: a.csv\n"
        "  b:\n    loader: stackexchange\n    path: b.xml\n    filters:\n      min_output_chars: 50\n"
        "      exclude_tags: [homework]\n"
    )
    r = load_recipe(path)
    assert r.source_filters("a").min_output_chars == 5 and r.source_filters("a").exclude_tags is None
    assert r.source_filters("b").min_output_chars == 50 and r.source_filters("b").boilerplate
    assert r.source_filters("b").exclude_tags == ["homework"]
    # the manifest's copy of the recipe shows a source's own keys only
    assert r.model_dump(mode="json")["sources"]["b"]["filters"] == {
        "min_output_chars": 50,
        "exclude_tags": ["homework"],
    }


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("filters:\n      include_tags: [anatomy]\n", "loader 'cord19' gives no tags"),
        ("filters:\n      min_output_chars: 0\n", "sources.a.filters.min_output_chars"),
        ("filters:\n      language: [en]\n", "sources.a.filters.language: unknown key"),
        ("filters:\n      max_output_chars: 3\n", "sources.a.filters with the recipe's filters"),
    ],
)
def test_bad_filter_settings_name_the_key(tmp_path, body, expected):
    path = tmp_path / "r.yaml"
    path.write_text(
        "name: x\nfilters:\n  min_output_chars: 5\nsources:\n"
        f"  a:\n    loader: cord19\n    path: a.csv\n    {body}"
    )
    with pytest.raises(MeadowError, match=re.escape(expected)):
        load_recipe(path)


# --------------------------------------------------------------------------- each filter


def test_length():
    s = {
        "min_instruction_chars": 10,
        "max_instruction_chars": 40,
        "min_output_chars": 5,
        "max_output_chars": 50,
    }
    assert failed(s, rec(instruction="Why?")) == (
        "filter_length",
        "instruction has 4 characters, fewer than 10",
    )
    assert failed(s, rec(instruction="W" * 41))[1] == "instruction has 41 characters, more than 40"
    assert failed(s, rec(output="  Yes  ")) == ("filter_length", "output has 3 characters, fewer than 5")
    assert failed(s, rec(output="y" * 51))[1] == "output has 51 characters, more than 50"
    assert failed(s, rec(instruction="W" * 40, output="y" * 5)) is None  # bounds are inclusive
    assert failed({"min_output_chars": 5}, rec(instruction="?", output="12345")) is None


@pytest.mark.parametrize(
    ("instruction", "input_", "output", "why"),
    [
        ("What causes anemia?", "", "what causes ANEMIA", "the output repeats the instruction"),
        (
            "Answer the question.",
            "Is aspirin an NSAID?",
            "Is aspirin an NSAID ?",
            "the output repeats the input",
        ),
        ("Is aspirin", "an NSAID?", "Is aspirin an NSAID", "the output repeats the instruction and input"),
        (
            "Read this. " * 30,
            "Then this.",
            "read this " * 30 + "then this",
            "the output repeats the instruction and input",
        ),
    ],
)
def test_copies_question_exact(instruction, input_, output, why):
    assert failed({}, rec(instruction=instruction, input=input_, output=output)) == (
        "filter_copies_question",
        why,
    )


def test_copies_question_must_pass():
    question = "Is it safe to take ibuprofen together with paracetamol for a headache?"
    quoting = (
        f"> {question}\n\nYes. They work differently and can be combined at normal doses; ask a pharmacist."
    )
    for settings in ({}, {"copy_ratio": 0.9}):
        assert failed(settings, rec(instruction=question, output="Yes, at the usual doses.")) is None
        assert failed(settings, rec(instruction=question, output=quoting + " More detail." * 20)) is None
    assert failed({"copies_question": False}, rec(instruction="Why?", output="why")) is None


def test_copy_ratio_catches_a_near_echo():
    question = "Is it safe to take ibuprofen together with paracetamol for a headache?"
    echo = "Is it safe to take ibuprofen together with paracetamol for a headache? Yes."
    assert failed({}, rec(instruction=question, output=echo)) is None  # not exact
    reason, why = failed({"copy_ratio": 0.9}, rec(instruction=question, output=echo))
    assert reason == "filter_copies_question" and "100% of the question's word 3-grams" in why


@pytest.mark.parametrize(
    ("output", "what"),
    [
        ("The tablet is coated.<br/>Take it with food.", "HTML tag"),
        ('See <a href="x">the leaflet</a>.', "HTML tag"),
        ("Salt &amp; water.", "HTML entity"),
        ("It&#39;s fine.", "HTML entity"),
        ("The drug was approved in 1990.[citation needed]", "wiki markup"),
        ("The shunt reverses.\n{{#ev:youtube|e46jtin-H50}}", "wiki markup"),  # as in WikiDoc's pages
        ("See [[Anemia]] for more.", "wiki markup"),
        ("== Causes ==\nIron deficiency.", "wiki markup"),
        ("Read more about how FMR1 changes.", "web page text"),  # as in a MEDIQA answer page
        ("For the full leaflet click here.", "web page text"),
        ("© 2019 Clinic. All rights reserved.", "web page text"),
    ],
)
def test_boilerplate_is_dropped(output, what):
    reason, why = failed({"boilerplate": True}, rec(output=output))
    assert reason == "filter_boilerplate" and why.startswith(f"{what} in the output")


@pytest.mark.parametrize(
    "output",
    [
        "Take it with food; 1 < 2 and 3 > 2 in the dose table.",
        "Their use of your data is up to their privacy policy.",  # a real StackExchange answer's words
        "Reference [1] shows this (Smith & Jones, 2001).",
        "AT&T is a company; x = a && b.",
        "Use the vector<int> type in C++.",
    ],
)
def test_boilerplate_must_pass(output):
    assert failed({"boilerplate": True}, rec(output=output)) is None


def test_language():
    s = {"languages": ["en"]}
    german = (
        "Der Patient hat seit zwei Tagen starke Kopfschmerzen und hohes Fieber. "
        "Er kann nachts nicht mehr schlafen."
    )
    english = "The patient has had a strong headache and a high fever for two days and cannot sleep at night."
    reason, why = failed(s, rec(output=german))
    assert reason == "filter_language" and why.startswith("the output reads as 'de'")
    assert failed(s, rec(instruction="Answer the question.", input=german, output="Yes."))[1].startswith(
        "the input reads as 'de'"
    )
    assert failed(s, rec(instruction=german, output="Ja."))[1].startswith("the instruction reads as 'de'")
    assert failed(s, rec(output=english)) is None
    assert failed(s, rec(output="Kopfschmerzen und Fieber.")) is None  # too short to judge (< 100 chars)
    assert failed({"languages": ["en", "de"]}, rec(output=german)) is None
    assert failed({**s, "language_min_chars": 500}, rec(output=german)) is None


def test_tags():
    tagged = rec(meta={"tags": ["Homework", "anatomy"]})
    assert failed({"exclude_tags": ["homework"]}, tagged) == (
        "filter_tags",
        "tag 'homework' is excluded (homework)",
    )
    assert failed({"exclude_tags": ["home*"]}, tagged)[0] == "filter_tags"
    assert failed({"exclude_tags": ["nutrition"]}, tagged) is None
    assert failed({"include_tags": ["anatomy", "physiology"]}, tagged) is None
    assert failed({"include_tags": ["physiology"]}, tagged) == (
        "filter_tags",
        "no tag of ['homework', 'anatomy'] is in include_tags",
    )
    assert failed({"include_tags": ["physiology"]}, rec()) is None  # no tags in meta: not judged


def test_filters_are_pure_and_keep_their_order():
    s = FilterSettings(min_output_chars=100, boilerplate=True)
    r = rec(output="<b>short</b>")
    fs = build_filters(s)
    assert [f.name for f in fs] == ["length", "copies_question", "boilerplate"]
    assert first_failure(fs, r)[0].name == "length" and first_failure(fs, r)[0].name == "length"


def test_the_language_model_is_loaded_once():
    qf._identifier.cache_clear()
    qf.identify("The quick brown fox jumps over the lazy dog near the river bank today.")
    qf.identify("Ein ganz anderer Satz.")
    assert qf._identifier.cache_info().misses == 1


# --------------------------------------------------------------------------- in a build


def test_build_counts_filter_drops_and_keeps_examples(tmp_path, examples_dir):
    posts = examples_dir / "stackexchange/health.stackexchange.com/Posts.xml"
    spec = sources.get("stackexchange")
    records = [r for r in spec.load([posts], spec.options()) if isinstance(r, Record)]
    tagged = [r for r in records if "pediatrics" in r.meta["tags"]]
    short = [r for r in records if r not in tagged and len(r.output.strip()) < 300]
    assert len(tagged) == 2 and short and len(records) > len(tagged) + len(short)
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        f"name: f\noutput_dir: {tmp_path / 'out'}\nfilters:\n  min_output_chars: 300\n"
        f"sources:\n  se:\n    loader: stackexchange\n    path: {posts}\n"
        "    filters:\n      exclude_tags: [pediatrics]\n"
        f"  cord:\n    loader: cord19\n    path: {examples_dir / 'cord19/metadata.csv'}\n"
        "    filters:\n      min_output_chars: null\n"
    )
    result = build(recipe, progress=False)
    s = result.manifest.to_json()["sources"]["se"]
    assert s["read"] == s["dropped_total"] + s["duplicates"] + s["unique"]
    assert s["dropped"]["filter_tags"] == len(tagged)
    assert s["dropped"]["filter_length"] == len(short)
    assert s["sampled"] == len(records) - len(tagged) - len(short)
    assert not any(k.startswith("filter_") for k in result.manifest.to_json()["sources"]["cord"]["dropped"])
    dropped = json.loads((result.out_dir / DROPPED_NAME).read_text())
    assert sorted(r["id"] for r in dropped["se"]["filter_tags"]) == sorted(r.id for r in tagged)
    assert {r["detail"] for r in dropped["se"]["filter_tags"]} == {
        "tag 'pediatrics' is excluded (pediatrics)"
    }


def test_build_fails_on_an_unknown_language_before_reading(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        f"name: f\noutput_dir: {tmp_path}\nfilters:\n  languages: [zz]\n"
        f"sources:\n  a:\n    loader: cord19\n    path: {Path(__file__)}\n"
    )
    with pytest.raises(MeadowError, match="zz not known"):
        build(recipe, progress=False)
