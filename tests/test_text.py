"""The word normaliser shared by the quality filters and decontamination."""

from __future__ import annotations

import pytest

from meadow.text import normalize


@pytest.mark.parametrize(
    ("spaced", "glued"),
    [
        ("temperature 37.2 °C (99 °F)", "temperature 37.2°C (99°F)"),
        ("temperature 37.2 °C (99 °F)", "temperature 37.2C (99F)"),
        ("hemoglobin 9.8 g/dL", "hemoglobin 9.8g/dL"),
        ("metformin 500 mg twice daily", "metformin 500mg twice daily"),
        ("a 4-day history", "a 4day history"),
    ],
)
def test_a_number_reads_the_same_however_its_unit_is_spaced(spaced, glued):
    # The unit's letters no longer join the number into one word ("2c", "500mg"), which broke a
    # run of words shared by a benchmark question and a training record.
    assert normalize(spaced) == normalize(glued)


def test_numbers_and_letters_are_words_of_their_own():
    assert normalize("37.2C 10mg μm3 HbA1c IL-6 IL6") == "37 2 10 mg μm 3 hba 1 il 6 il 6"
    assert normalize("Type 1 diabetes") != normalize("Type 2 diabetes")


@pytest.mark.parametrize(
    "text",
    [
        "A 45-year-old man, BP 120/80 mmHg; HbA1c 7.2% (n=12) a_b __init__ x1y2 Z 3rd 10mg I/O",
        "TYPE 2 Diabetes\tMellitus\nvitamin a and vitamin K; IL-6 vs IL6",
        "",
        "  ...  ",
        "q 1 b c d e 99 42abc abc42 a9 9a",
    ],
)
def test_ascii_text_reads_the_same_through_the_ascii_fast_path(text):
    # meadow.text reads ASCII text with a narrower pattern (the common case, about 40% faster);
    # the words must be those of the general pattern.
    from meadow import text as mtext

    assert mtext.words(text) == tuple(mtext._WORD.findall(text.lower()))


def test_ascii_fast_path_agrees_on_real_fixture_text(raw_fixtures):
    from meadow import text as mtext

    texts = [
        line
        for p in sorted(raw_fixtures.rglob("*"))
        if p.is_file() and p.suffix in {".csv", ".json", ".jsonl", ".txt", ".xml", ".md"}
        for line in p.read_text(encoding="utf-8", errors="replace").splitlines()[:400]
        if line.isascii()
    ]
    assert len(texts) > 1000
    for t in texts:
        assert mtext.words(t) == tuple(mtext._WORD.findall(t.lower())), t
