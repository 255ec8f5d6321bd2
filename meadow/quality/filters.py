"""Per-record quality filters: each a small pure check of one record, configured by the recipe.

A recipe sets them globally (``filters:`` at the top level) and per source (``sources.<name>.filters``);
a key set in a source replaces the global value of that key only. A record that fails a filter is
dropped by the build with the reason ``filter_<name>`` and a detail saying why; filters run on every
record a loader yields and on every rephrased record, before it competes for the source's sample,
so they do not depend on row order. The first filter that fails names the reason, in this order:

- ``tags``: records by their upstream tags: a StackExchange question's (the ``stackexchange`` dump
  loader) or an Anki note's (``anki``, kept through rephrasing). ``include_tags``: keep only records
  with one of these tags; ``exclude_tags``: drop records with any of them. Tags are matched
  case-insensitively, as shell patterns (``homework*``). Only records whose ``meta`` carries
  ``tags`` are judged; a source whose loader gives no tags cannot set them.
- ``length``: ``min_/max_instruction_chars`` and ``min_/max_output_chars``, counted on the stripped text.
- ``copies_question``: the output, normalised (see meadow.text), equals the instruction, the
  input, or both together; with ``copy_ratio`` also an output that contains at least that share of the
  question's word 3-grams while being at most twice as long (an echo of the question, maybe with a
  few words added, rather than an answer that quotes it).
- ``boilerplate``: HTML or web leftovers in the output: HTML tags and entities, wiki markup
  (``[citation needed]``, ``{{template}}``, ``[[link]]``, ``== heading ==``) and web page phrases
  ("click here", "all rights reserved", ...).
- ``language``: the language of the output and of the question (the input, or the instruction where
  the input is empty), judged by py3langid's embedded model (offline) on texts of at least
  ``language_min_chars`` characters when it is at least ``language_min_confidence`` sure; a text in
  a language not in ``languages`` drops the record.

Defaults: only ``copies_question`` (exact echoes, which carry no answer) is on. Everything else is
off until a recipe sets it, so a recipe without ``filters`` keeps what medAlpaca kept.
"""

from __future__ import annotations

import fnmatch
import functools
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from meadow.errors import MeadowError
from meadow.quality.base import Rejection
from meadow.records import Record
from meadow.schemas.quality import FilterSettings
from meadow.text import words

LANGUAGE_SAMPLE_CHARS = 2000
"""How much of a text the language identifier reads (the start; enough to be sure, and fast)."""


# --------------------------------------------------------------------------- the checks

Check = Callable[[Record], "str | None"]


@dataclass(frozen=True)
class Filter:
    """One check: ``check(record)`` is None to keep the record, else why it is dropped."""

    name: str
    check: Check

    @property
    def reason(self) -> str:
        return f"filter_{self.name}"

    def __call__(self, record: Record) -> Rejection | None:
        """The quality step protocol (meadow.quality.base): None keeps the record."""
        detail = self.check(record)
        return None if detail is None else Rejection(self.reason, detail)


def build_filters(settings: FilterSettings) -> list[Filter]:
    """The enabled filters, in the order they are applied."""
    out: list[Filter] = []
    if settings.sets_tags():
        out.append(Filter("tags", functools.partial(check_tags, settings)))
    if any(
        v is not None
        for v in (
            settings.min_instruction_chars,
            settings.max_instruction_chars,
            settings.min_output_chars,
            settings.max_output_chars,
        )
    ):
        out.append(Filter("length", functools.partial(check_length, settings)))
    if settings.copies_question:
        out.append(Filter("copies_question", functools.partial(check_copy, ratio=settings.copy_ratio)))
    if settings.boilerplate:
        out.append(Filter("boilerplate", check_boilerplate))
    if settings.languages is not None:
        known = language_codes()
        unknown = [code for code in settings.languages if code not in known]
        if unknown:
            raise MeadowError(
                f"filters.languages: {', '.join(unknown)} not known to the language identifier; "
                f"known: {', '.join(sorted(known))}"
            )
        out.append(Filter("language", functools.partial(check_language, settings)))
    return out


def first_failure(filters: Iterable[Filter], record: Record) -> tuple[Filter, str] | None:
    """The first filter ``record`` fails and why, or None when it passes them all."""
    for f in filters:
        detail = f.check(record)
        if detail is not None:
            return f, detail
    return None


def check_tags(settings: FilterSettings, record: Record) -> str | None:
    tags = record.meta.get("tags")
    if not isinstance(tags, list):
        return None  # no tag information: not judged
    lowered = [str(t).lower() for t in tags]
    for pattern in settings.exclude_tags or ():
        hit = next((t for t in lowered if fnmatch.fnmatchcase(t, pattern)), None)
        if hit is not None:
            return f"tag {hit!r} is excluded ({pattern})"
    if settings.include_tags is not None and not any(
        fnmatch.fnmatchcase(t, p) for t in lowered for p in settings.include_tags
    ):
        return f"no tag of {lowered} is in include_tags"
    return None


def check_length(settings: FilterSettings, record: Record) -> str | None:
    for what, text in (("instruction", record.instruction), ("output", record.output)):
        n = len(text.strip())
        lo, hi = getattr(settings, f"min_{what}_chars"), getattr(settings, f"max_{what}_chars")
        if lo is not None and n < lo:
            return f"{what} has {n} characters, fewer than {lo}"
        if hi is not None and n > hi:
            return f"{what} has {n} characters, more than {hi}"
    return None


def _trigrams(ws: Sequence[str]) -> set[tuple[str, ...]]:
    return set(zip(ws, ws[1:], ws[2:], strict=False))


def _similar_length(a: int, b: int) -> bool:
    """Whether texts of ``a`` and ``b`` characters can read as the same words: an echo differs in
    case, punctuation and spacing, never four times over. Spares normalising a long input (a
    CORD-19 abstract) to compare it with a short output."""
    return a <= 4 * b + 64 and b <= 4 * a + 64


def check_copy(record: Record, *, ratio: float | None = None) -> str | None:
    out = words(record.output)
    if not out:
        return None
    n = len(record.output)
    if _similar_length(len(record.instruction), n) and words(record.instruction) == out:
        return "the output repeats the instruction"
    if record.input and _similar_length(len(record.input), n) and words(record.input) == out:
        return "the output repeats the input"
    both = len(record.instruction) + len(record.input)
    if record.input and _similar_length(both, n) and words(record.instruction) + words(record.input) == out:
        return "the output repeats the instruction and input"
    if ratio is None:
        return None
    question = words(record.instruction) + words(record.input)
    if len(question) < 3 or len(out) > 2 * len(question):
        return None
    asked = _trigrams(question)
    share = len(asked & _trigrams(out)) / len(asked)
    if share >= ratio:
        return f"the output holds {share:.0%} of the question's word 3-grams"
    return None


_BOILERPLATE: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "HTML tag",
        re.compile(
            r"</?(?:a|abbr|b|blockquote|body|br|code|div|em|font|h[1-6]|head|hr|html|i|iframe|img|li|"
            r"ol|p|pre|script|span|strong|style|sub|sup|table|tbody|td|th|thead|tr|u|ul)\b[^<>]{0,200}/?>",
            re.IGNORECASE,
        ),
    ),
    ("HTML entity", re.compile(r"&(?:[a-z]{2,8}|#[0-9]{2,6}|#x[0-9a-f]{2,5});", re.IGNORECASE)),
    (
        "wiki markup",
        re.compile(
            r"\[(?:citation|clarification|verification|dubious|who|when|which)[^\]\n]{0,20}\]"
            r"|\[edit\]|\{\{[^{}\n]{0,200}\}\}|\[\[[^\[\]\n]{1,200}\]\]|^\s*={2,}[^=\n]{1,100}={2,}\s*$"
            r"|'''[^'\n]{1,100}'''",
            re.IGNORECASE | re.MULTILINE,
        ),
    ),
    (
        "web page text",
        re.compile(
            r"\b(?:click here|read more|all rights reserved|subscribe to (?:our|the) newsletter"
            r"|sign up for (?:our|the) newsletter|share this (?:article|page|post)|enable javascript"
            r"|javascript is disabled|page not found|404 not found)\b",
            re.IGNORECASE,
        ),
    ),
)


def check_boilerplate(record: Record) -> str | None:
    for what, pattern in _BOILERPLATE:
        m = pattern.search(record.output)
        if m:
            return f"{what} in the output: {m.group(0).strip()[:60]!r}"
    return None


@functools.cache
def _identifier() -> Any:
    """py3langid's identifier with probabilities, loaded once (about half a second)."""
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def language_codes() -> frozenset[str]:
    """The languages the identifier knows."""
    return frozenset(_identifier().nb_classes)


def identify(text: str) -> tuple[str, float]:
    """(ISO 639-1 code, probability) of ``text``'s language."""
    lang, prob = _identifier().classify(text[:LANGUAGE_SAMPLE_CHARS])
    return str(lang), float(prob)


def check_language(settings: FilterSettings, record: Record) -> str | None:
    allowed = settings.languages or []
    question = ("input", record.input) if record.input.strip() else ("instruction", record.instruction)
    for what, text in (question, ("output", record.output)):
        text = text.strip()
        if len(text) < settings.language_min_chars:
            continue
        lang, prob = identify(text)
        if lang not in allowed and prob >= settings.language_min_confidence:
            return f"the {what} reads as {lang!r} (p={prob:.2f}), not {', '.join(allowed)}"
    return None
