"""Answer-letter extraction from free-text answers, with explicit expectations."""

from __future__ import annotations

import pytest

from meadow.eval.extract import extract_letter

OPTIONS = {"A": "Kidney", "B": "Liver", "C": "Nephron", "D": "Heart"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The answer is (C)", "C"),
        ("The answer is (C).", "C"),
        ("C.", "C"),
        ("C", "C"),
        ("  C\n", "C"),
        ("(C)", "C"),
        ("C) Nephron", "C"),
        ("C: Nephron", "C"),
        ("Option C: Nephron", "C"),
        ("**C**", "C"),
        ("C - Nephron", "C"),
        ("The correct answer is C.", "C"),
        ("Answer: C", "C"),
        ("answer: (c)", "C"),
        ("I think the correct option is C because nephrons filter blood.", "C"),
        ("The answer is B. On reflection, the answer is C.", "C"),  # the last statement counts
        ("Nephron", "C"),  # the text of one option, exactly
        ("nephron.", "C"),
        # no answer
        ("", None),
        ("I do not know.", None),
        ("A patient with these findings needs a biopsy.", None),  # "A" opening a sentence
        ("The answer is a matter of debate.", None),  # lower-case "a" is English
        ("The answer is E", None),  # not an option of this question
        ("Nephrons are the functional units of the kidney.", None),
    ],
)
def test_extract_letter(text: str, expected: str | None):
    assert extract_letter(text, OPTIONS) == expected


def test_letters_as_a_string_and_five_options():
    assert extract_letter("The answer is E", "ABCDE") == "E"
    assert extract_letter("E: Lipohyalinosis", "ABCDE") == "E"
    assert extract_letter("Kidney", "ABCD") is None  # without the options, no text matching
