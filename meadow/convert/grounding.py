"""Is a rephrased answer grounded in its passage? The support check run on every rephrased pair.

A small model (and gpt-3.5 too, now and then) answers a flashcard with something the card does
not say: "Lactose is avoided in severe renal impairment..." for a card about metformin, an
invented "Phoenaemia", a reference range "135-145 mmol/L" cut to "135 mmol/L". ``support``
measures how much of an answer the passage backs:

- **the score**: the share of the answer's distinct content tokens (words, numbers, units
  such as ``mmol/l`` or ``%``) that the passage holds. Words are compared by a light stem
  (``occurs``/``occurred``/``occur``, ``treatment``/``treated``, ``diagnosis``/``diagnosed``),
  lowercased, with stop words (function words, question words, hedges: ``the``, ``what``,
  ``usually``) left out. Negations (``not``, ``no``, ``without``) are content: an answer that
  adds one contradicts its card. Tokens the answer shares with its question do not count
  either way: an answer may restate its question ("The radial nerve is injured in wrist drop"),
  so the score measures what the answer adds to it.
- **numbers**: every number of the answer must be in the passage, written with or without
  thousands commas and trailing decimal zeros (``1,000`` = ``1000``, ``5.0`` = ``5``), whatever
  the question says; enumeration marks (``1.`` at the start of a line, ``(2)``) are not numbers.
- **ranges**: a number that the passage gives only as one end of a range (``135-145``,
  ``60 to 100``, ``between 20 and 25``) must come with the other end.

A pair fails on any number or range problem, or with a score below the recipe's
``llm.min_support``. Only generated answers are checked: a WikiDoc textbook record's answer is
the section text itself, so its support is 1 by construction (the optional judge, see
``meadow.convert.prompts.JUDGE``, asks whether the section answers the question).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass

from meadow.text import words

# ------------------------------------------------------------------ numbers and units

_NUM = r"(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?"
_UNIT = r"(?:\s*(%|‰|°\s?[CF]\b|[A-Za-zμ]{1,6}(?:/(?:[A-Za-zμ]{1,6}|\d+(?:\.\d+)?))+))?"
_NUMBER = re.compile(rf"(?<![\w.]){_NUM}(?!\d)" + _UNIT)
"""A number not glued to the word before it (``B12``, ``CD4`` and ``HbA1c`` are words), then its unit
when it is a symbol or has a slash (``%``, ``°C``, ``mmol/L``, ``mg/dL``; unit words such as
``mg`` or ``kg`` are ordinary words)."""
_RANGE_SEP = re.compile(r"^\s*(-|–|—|−|to|and)\s*$")
_BETWEEN = re.compile(r"\bbetween\s*$", re.IGNORECASE)
_ENUMERATION = re.compile(r"(?:^|(?<=[\s,;:(]))(?:[1-9]|1\d)[.)](?=\s+[^\W\d_])|\((?:[1-9]|1\d)\)")
"""``1. hematuria, 2. hypertension``, ``(3)``: list marks, not numbers of the answer."""
_PERCENT = re.compile(r"\bper\s?cent\b", re.IGNORECASE)


def _number(whole: str, frac: str | None) -> str:
    """``1,000`` -> ``1000``; ``5.50`` -> ``5.5``; ``5.0`` -> ``5``; ``007`` -> ``7``."""
    n = whole.replace(",", "").lstrip("0") or "0"
    frac = (frac or "").rstrip("0")
    return f"{n}.{frac}" if frac else n


def _unit(text: str | None) -> str | None:
    if not text:
        return None
    unit = re.sub(r"\s+", "", text).lower()
    return unit.replace("μ", "u")


@dataclass(frozen=True)
class _Numbers:
    alone: frozenset[str]
    """Numbers written on their own (not as the end of a range)."""
    ranges: frozenset[tuple[str, str]]
    units: frozenset[str]
    rest: str
    """The text with its numbers, units and enumeration marks blanked out."""

    @property
    def all(self) -> frozenset[str]:
        return self.alone | {end for r in self.ranges for end in r}


def _numbers(text: str) -> _Numbers:
    text = _ENUMERATION.sub(" ", _PERCENT.sub("%", text))
    found = list(_NUMBER.finditer(text))
    alone: set[str] = set()
    ranges: set[tuple[str, str]] = set()
    units: set[str] = set()
    i = 0
    while i < len(found):
        m = found[i]
        unit = _unit(m.group(3))
        if unit:
            units.add(unit)
        nxt = found[i + 1] if i + 1 < len(found) else None
        if nxt is not None:
            between = text[m.end() : nxt.start()]
            sep = _RANGE_SEP.match(between)
            if sep is not None and (sep.group(1) != "and" or _BETWEEN.search(text, 0, m.start())):
                ranges.add((_number(m.group(1), m.group(2)), _number(nxt.group(1), nxt.group(2))))
                nunit = _unit(nxt.group(3))
                if nunit:
                    units.add(nunit)
                i += 2
                continue
        alone.add(_number(m.group(1), m.group(2)))
        i += 1
    rest = _NUMBER.sub(" ", text)
    return _Numbers(frozenset(alone), frozenset(ranges), frozenset(units), rest)


# ------------------------------------------------------------------ words

_STOP_WORDS = """
    a about above after again against all also although always am among an and any approximately
    are around as at be because been before being below between both but by can could did do does
    doing done down during each either else etc even ever every for from further generally had has
    have having he her here hers herself him himself his how however i if in into is it its itself
    just known called like likely mainly may me might more most mostly much must my myself nor of
    off often on once only or other our ours ourselves out over own per primarily rather same she
    should since so some such than that the their theirs them themselves then there these they this
    those through thus to too typically under until up upon us usually very via was we were what
    whatever when where whether which while who whom whose why will with within would yes you your
    yours yourself yourselves eg ie question answer refers refer referred term termed
    defined include includes including example examples use used uses using give gives given giving
"""
STOP_WORDS = frozenset(_STOP_WORDS.split())
"""Words that carry no checkable fact: function words, question words, hedges. Negations
(``not``, ``no``, ``never``, ``without``) are deliberately not here."""

_INFLECTION = (
    ("sses", "ss"),
    ("ies", "y"),
    ("ied", "y"),
    ("shes", "sh"),
    ("ches", "ch"),
    ("xes", "x"),
    ("zes", "z"),
    ("sis", "sis"),  # diagnosis, lysis: not a plural (kept as is; see _DERIVATION)
    ("ss", "ss"),
    ("us", "us"),  # virus, status
    ("ing", ""),
    ("eed", "eed"),  # bleed, exceed
    ("ed", ""),
    ("s", ""),
)
_DERIVATION = (
    ("ment", ""),  # treatment -> treat, impairment -> impair
    ("ation", ""),  # stabilization -> stabiliz(e)
    ("tion", "t"),  # infection -> infect
    ("sion", "s"),  # hypertension -> hypertens
    ("ive", ""),  # hypertensive -> hypertens
    ("sis", "s"),  # diagnosis -> diagnos (= diagnosed)
    ("ly", ""),  # severely -> severe
)
_MIN_STEM = 3


def _strip(word: str, rules: tuple[tuple[str, str], ...]) -> str:
    for suffix, repl in rules:
        if word.endswith(suffix):
            stem = word[: len(word) - len(suffix)] + repl
            return stem if len(stem) >= _MIN_STEM else word
    return word


@functools.lru_cache(maxsize=1 << 16)
def stem(word: str) -> str:
    """A light English stem: plural and verb endings (``occurs``, ``occurred``, ``occurring``
    -> ``occur``) and a few derivations (``treatment``, ``diagnosis``, ``hypertension``), then
    a doubled final consonant and a final ``e`` or ``y``. Not a linguist's stemmer: it only has to map
    the forms of one word to one key, and keep apart words that merely start alike
    (``lactose`` -> ``lactos``, ``lactic`` -> ``lactic``). Cached: a text's words repeat, and a
    cached build's rephrasing spent most of its time here."""
    if len(word) <= _MIN_STEM or not word.isalpha():
        return word
    w = _strip(_strip(word, _INFLECTION), _DERIVATION)
    if len(w) > _MIN_STEM and w[-1] == w[-2] and w[-1] not in "lsz":  # occurr -> occur
        w = w[:-1]
    if len(w) > _MIN_STEM and w[-1] in "ey":  # cause/caused -> caus, injury/injured -> injur
        w = w[:-1]
    return w


def _content(text: str) -> frozenset[str]:
    return frozenset(stem(w) for w in words(text) if w not in STOP_WORDS and w.isalnum())


@dataclass(frozen=True)
class _Tokens:
    words: frozenset[str]
    numbers: _Numbers

    @classmethod
    def of(cls, text: str) -> _Tokens:
        if not (text.isascii() or unicodedata.is_normalized("NFKC", text)):
            text = unicodedata.normalize("NFKC", text)
        numbers = _numbers(text)
        return cls(_content(numbers.rest), numbers)

    @property
    def all(self) -> frozenset[str]:
        """Words, numbers (``#135``) and units (``mmol/l``) as one set of tokens."""
        return self.words | {f"#{n}" for n in self.numbers.all} | self.numbers.units


# ------------------------------------------------------------------ the check


@dataclass(frozen=True)
class Support:
    score: float
    """Share of the answer's content tokens (beyond its question's) found in the passage."""
    unsupported: tuple[str, ...]
    """Those tokens not found (stems, ``#number``, units), sorted."""
    problems: tuple[str, ...]
    """Number and range rules broken, e.g. 'range 135-145 cut to 135'."""

    def passes(self, threshold: float) -> bool:
        return not self.problems and self.score >= threshold

    def describe(self, threshold: float) -> str:
        parts = list(self.problems)
        if self.score < threshold:
            missing = ", ".join(self.unsupported[:12]) + (", ..." if len(self.unsupported) > 12 else "")
            parts.append(f"support {self.score:.2f} < {threshold:g} (not in the passage: {missing})")
        return "; ".join(parts) if parts else f"support {self.score:.2f}"


def support(passage: str, question: str, answer: str) -> Support:
    """How well ``passage`` supports ``answer`` given to ``question`` (see the module doc)."""
    p, q, a = _Tokens.of(passage), _Tokens.of(question), _Tokens.of(answer)
    problems = []
    known = p.numbers.all
    for lo, hi in sorted(a.numbers.ranges):
        for end in (lo, hi):
            if end not in known:
                problems.append(f"number {end} (of {lo}-{hi}) not in the passage")
    for n in sorted(a.numbers.alone):
        if n not in known:
            problems.append(f"number {n} not in the passage")
    said = a.numbers.all
    for lo, hi in sorted(p.numbers.ranges):
        for end, other in ((lo, hi), (hi, lo)):
            if end in said and other not in said and end not in p.numbers.alone:
                problems.append(f"range {lo}-{hi} cut to {end}")
    counted = a.all - q.all
    found = p.all
    unsupported = tuple(sorted(t for t in counted if t not in found))
    score = 1.0 if not counted else 1 - len(unsupported) / len(counted)
    return Support(round(score, 4), unsupported, tuple(problems))
