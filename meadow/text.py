"""Text normalisation shared by the quality filters and decontamination."""

from __future__ import annotations

import functools
import re
import unicodedata

_WORD = re.compile(r"[^\W\d_]{2,}|\d+|[^\W\d_a-z]")
"""A run of two or more letters, a run of digits, or one letter that is not a-z."""
_ASCII_WORD = re.compile(r"[a-z]{2,}|[0-9]+", re.ASCII)
"""``_WORD`` on lowercased ASCII text, where every letter is a-z and every digit 0-9: the same words,
found in about 60% of the time."""


@functools.lru_cache(maxsize=16)
def words(text: str) -> tuple[str, ...]:
    """The normalised words of ``text``: Unicode NFKC, lowercased, punctuation read as spaces,
    whitespace collapsed, and single-letter words (a-z) left out.

    Single letters go so that option letters do not matter: ``A: Aorta``, ``(a) aorta`` and
    ``{'A': 'Aorta'}`` all read ``aorta``; the article "a" goes too, on both sides of a comparison.
    Digits stay (``type 1`` is not ``type 2``), as words of their own, split from the letters they
    touch: a number and its unit read the same however they are spaced (``37.2C``, ``37.2°C`` and
    ``37.2 °C`` all read ``37 2``; ``10mg`` and ``10 mg`` read ``10 mg``). Cached for the last few
    texts: a record's fields are read by more than one check.
    """
    if text.isascii():
        return tuple(_ASCII_WORD.findall(text.lower()))
    if not unicodedata.is_normalized("NFKC", text):
        text = unicodedata.normalize("NFKC", text)
    return tuple(_WORD.findall(text.lower()))


def normalize(text: str) -> str:
    """The normalised words of ``text`` joined by single spaces."""
    return " ".join(words(text))
