"""The answer letter in a model's free-text answer to a multiple-choice question.

Rules, first match wins (``letters`` are the question's option letters, e.g. ``"ABCDE"``):

1. an explicit statement: ``answer is (C)``, ``Answer: C``, ``correct option is C``,
   ``the answer would be C.`` (the last such statement counts, so a model that corrects itself is
   read at its final word);
2. the answer opens with a letter: ``C``, ``C.``, ``(C)``, ``C)``, ``C: text``, ``Option C: ...``,
   ``**C**``;
3. the answer is exactly one option's text (case and surrounding punctuation ignored);
4. otherwise ``None``: no answer (scored as wrong).

A lone capital letter inside running text (``A patient with ...``) is never taken as an answer.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_STATEMENT = (
    r"(?:answer|option|choice)\s*(?:is|would\s+be|should\s+be|will\s+be|:|=)?\s*(?:probably\s+|likely\s+)?"
    r"(?:option\s+|choice\s+)?[\(\[\*]*(?P<letter>[{L}])[\)\]\*]*(?![\w'])"
)
_LEADING = (
    r"^\s*(?:\*\*)?(?:option|choice|answer)?\s*[\(\[]?(?P<letter>[{L}])"
    r"(?:[\)\]]|\*\*|[.:,]|\s*$|\s+[-\u2013:])"
)


def extract_letter(text: str, letters: str | Mapping[str, str] = "ABCD") -> str | None:
    """The option letter ``text`` answers with, or None (see the module docstring).

    ``letters`` is a string of letters or the options dict (letter -> text), which also enables
    matching an answer that repeats an option's text.
    """
    options = letters if isinstance(letters, Mapping) else None
    allowed = "".join(options) if options is not None else letters
    if not text or not allowed:
        return None
    cls = re.escape(allowed)
    statements = list(re.finditer(_STATEMENT.format(L=cls), text, re.IGNORECASE))
    # "answer is a ..." (lower case) is English, not option A
    found = [
        m["letter"].upper()
        for m in statements
        if m["letter"].upper() in allowed and (m["letter"].isupper() or _bracketed(m))
    ]
    if found:
        return found[-1]
    m = re.match(_LEADING.format(L=cls), text, re.IGNORECASE)
    if m and (m["letter"].isupper() or _bracketed(m)):
        return m["letter"].upper()
    if options is not None:
        norm = _norm(text)
        for letter, option in options.items():
            if norm and norm == _norm(option):
                return letter
    return None


def _bracketed(m: re.Match[str]) -> bool:
    start, end = m.span("letter")
    before = m.string[start - 1] if start else ""
    after = m.string[end] if end < len(m.string) else ""
    return before in "([" and after in ")]"


def _norm(text: str) -> str:
    return re.sub(r"[\s.,;:!*\"']+", " ", text).strip().lower()
