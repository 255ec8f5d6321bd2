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
