"""PubMed causal language (Yu, Li & Wang, EMNLP 2019): what relationship does a finding state?

Format read: ``data/pubmed_causal_language_use.csv`` of
github.com/junwang4/causal-language-use-in-science, UTF-8 CSV with the header
``sentence,label`` (3,061 conclusion sentences from PubMed abstracts). Labels, per the
upstream README and ``main.py`` (``{0:'none', 1:'causal', 2:'cond', 3:'corr'}``):
0 = no relationship, 1 = direct causal, 2 = conditional causal, 3 = correlational.

Task framing, option ``framing``:

- ``"corrected"`` (default): instruction ``INSTRUCTION`` below, which names the four
  upstream classes with their upstream numbers; output ``OUTPUTS[label]``, e.g.
  ``"This describes a direct causal relationship."`` for label 1.
- ``"medalpaca"``: medAlpaca's exact strings and label mapping, for reproduction only.
  medAlpaca's instruction offers "(1) directly correlative, (2) conditionally causative,
  (3) causative, or (0) no relationship", and its answers are wrong for every class:
  rows of ``medical_meadow_pubmed_causal`` checked against the upstream file give
  0 (no relationship) -> "This is a directly correlative relationship",
  1 (direct causal) -> "This no relationship.", 2 (conditional causal) -> "This is a
  causative relationship", 3 (correlational) -> "This is a conditionally causative
  relationship" (see DATA_DESCRIPTION.md for the evidence).

Input: the sentence, outer whitespace stripped, and the literal escape sequences that the
upstream file carries (``6\\\\xa0months``, ``\\\\u2005``) decoded, space characters becoming a
plain space. Other upstream noise (stray quote marks from double CSV quoting, mojibake
such as ``â‰¥``) is kept as published.

Drops: ``bad_label`` (not 0-3, malformed), ``empty_sentence``, ``duplicate_sentence``
(the same sentence again with the same label) and ``conflicting_label`` (the same
sentence with another label: the first read is kept), and the field checks of
``make_record``. Record id: ``pubmed_causal:<hash of the sentence>`` (the upstream has no
ids), the same under both framings.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Literal

from meadow.records import Record
from meadow.sources import Drop, Item, Options, register
from meadow.sources._common import content_id, iter_csv, make_record, where

SOURCE = "pubmed_causal"
REQUIRED = ("sentence", "label")
LABEL_NAMES = {"0": "no_relationship", "1": "direct_causal", "2": "conditional_causal", "3": "correlational"}

INSTRUCTION = (
    "Question: Is this describing a (1) direct causal relationship, (2) conditional causal relationship, "
    "(3) correlational relationship, or (0) no relationship?"
)
OUTPUTS = {
    "0": "This describes no relationship.",
    "1": "This describes a direct causal relationship.",
    "2": "This describes a conditional causal relationship.",
    "3": "This describes a correlational relationship.",
}
MEDALPACA_INSTRUCTION = (
    "Question: Is this describing a (1) directly correlative relationship, (2) conditionally causative "
    "relationship, (3) causative relationship, or (0) no relationship."
)
MEDALPACA_OUTPUTS = {
    "0": "This is a directly correlative relationship",
    "1": "This no relationship.",
    "2": "This is a causative relationship",
    "3": "This is a conditionally causative relationship",
}
FRAMINGS = {"corrected": (INSTRUCTION, OUTPUTS), "medalpaca": (MEDALPACA_INSTRUCTION, MEDALPACA_OUTPUTS)}

# One or two literal backslashes, then xNN or uNNNN: escapes left in the upstream text.
_ESCAPE = re.compile(r"\\{1,2}(?:x([0-9a-fA-F]{2})|u([0-9a-fA-F]{4}))")

LICENSE = "GPL-3.0"
URL = "https://github.com/junwang4/causal-language-use-in-science"
CITATION = """@inproceedings{yu-etal-2019-detecting,
  title = {Detecting Causal Language Use in Science Findings},
  author = {Yu, Bei and Li, Yingya and Wang, Jun},
  booktitle = {Proceedings of the 2019 Conference on Empirical Methods in Natural Language Processing
               and the 9th International Joint Conference on Natural Language Processing (EMNLP-IJCNLP)},
  pages = {4664--4674},
  year = {2019},
  publisher = {Association for Computational Linguistics},
  url = {https://aclanthology.org/D19-1473},
  doi = {10.18653/v1/D19-1473}
}"""


class PubmedCausalOptions(Options):
    framing: Literal["corrected", "medalpaca"] = "corrected"
    """"corrected": answers name the upstream class; "medalpaca": medAlpaca's (mislabelled) strings."""


@register(
    "pubmed_causal",
    options=PubmedCausalOptions,
    produces="records",
    summary="PubMed causal language (EMNLP 2019): no, correlational, conditional or direct causal claim",
    license=LICENSE,
    citation=CITATION,
)
def load(paths: Sequence[Path], options: PubmedCausalOptions) -> Iterator[Item]:
    instruction, outputs = FRAMINGS[options.framing]
    seen: dict[str, str] = {}  # record id -> label of the kept record
    for path in paths:
        yield from _load_file(path, instruction, outputs, options.framing, seen)


def clean_sentence(text: str) -> str:
    """Strip, and decode the literal ``\\xa0``/``\\u2005`` escapes of the upstream file."""

    def decode(m: re.Match[str]) -> str:
        char = chr(int(m[1] or m[2], 16))
        return " " if char.isspace() else char

    return _ESCAPE.sub(decode, text).strip()


def _load_file(
    path: Path, instruction: str, outputs: dict[str, str], framing: str, seen: dict[str, str]
) -> Iterator[Item]:
    for line, row in iter_csv(path, required=REQUIRED):
        at = where(path, line)
        label = row["label"].strip()
        if label not in outputs:
            yield Drop("bad_label", at, f"label {label[:20]!r} is not 0, 1, 2 or 3", malformed=True)
            continue
        sentence = clean_sentence(row["sentence"])
        if not sentence:
            yield Drop("empty_sentence", at, "empty sentence cell")
            continue
        rid = content_id(SOURCE, sentence)
        if rid in seen:
            if seen[rid] == label:
                yield Drop("duplicate_sentence", at, f"{rid}: same sentence and label again")
            else:
                yield Drop("conflicting_label", at, f"{rid}: label {label}, kept label {seen[rid]}")
            continue
        item = make_record(
            at,
            instruction=instruction,
            input=sentence,
            output=outputs[label],
            source=SOURCE,
            id=rid,
            meta={
                "label": int(label),
                "label_name": LABEL_NAMES[label],
                "framing": framing,
                "file": path.name,
                "license": LICENSE,
                "url": URL,
            },
        )
        if isinstance(item, Record):
            seen[rid] = label
        yield item
