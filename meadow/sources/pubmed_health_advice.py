"""PubMed health advice (Li, Wang & Yu, EMNLP 2021): is this sentence strong, weak or no advice?

Format read: the three annotation files of github.com/junwang4/detecting-health-advice
(``data/``), UTF-8 CSV with a header line. Their columns differ::

    annotations_structured_abstract.csv    label,pmid,sentence,design
    annotations_unstructured_abstract.csv  label,pmid,sentence,rel_loc
    annotations_discussion.csv             label,pmid,sentence,rel_loc,citation_mentioned,past_tense

``label,pmid,sentence`` are required (a file without them raises InputError at line 1);
``label`` is 0 = no advice, 1 = weak advice, 2 = strong advice. The section is read from
the file name (``annotations_<section>...csv``); a renamed file is recognised by its
columns (``design``: structured abstract, ``citation_mentioned``: discussion, ``rel_loc``
only: unstructured abstract), else InputError.

Task framing (medAlpaca's ``medical_meadow_health_advice``, wording taken from the
dataset on the Hub):

- instruction: ``"Question: is this a 2) strong advice, 1) weak advice 0) no advice?"``
- input: the sentence (outer whitespace stripped; the unstructured-abstract and discussion
  files end most sentences with a space),
- output: ``"This is no advice"`` / ``"This is a weak advice"`` / ``"This is a strong advice"``.

Drops: ``section_not_selected`` (option ``sections``), ``bad_label`` and ``bad_pmid``
(malformed), ``empty_sentence``, ``duplicate_sentence`` (the same pmid and sentence
again with the same label: a repeat) and ``conflicting_label`` (the same pmid and
sentence with another label: the first one read is kept), and the field checks of
``make_record``. The only state kept is one hash per kept sentence (about 11k).
Record id: ``pubmed_health_advice:<pmid>:<hash of the sentence>``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Literal

from meadow.errors import InputError
from meadow.records import Record
from meadow.sources import Drop, Item, Options, register
from meadow.sources._common import content_id, iter_csv, make_record, where

SOURCE = "pubmed_health_advice"
INSTRUCTION = "Question: is this a 2) strong advice, 1) weak advice 0) no advice?"
OUTPUTS = {"0": "This is no advice", "1": "This is a weak advice", "2": "This is a strong advice"}
LABEL_NAMES = {"0": "no_advice", "1": "weak_advice", "2": "strong_advice"}
REQUIRED = ("label", "pmid", "sentence")
Section = Literal["structured_abstract", "unstructured_abstract", "discussion"]
SECTIONS: tuple[Section, ...] = ("structured_abstract", "unstructured_abstract", "discussion")
_NAME = re.compile(r"annotations_(structured_abstract|unstructured_abstract|discussion)(\.|$)")

LICENSE = "unknown (the upstream repository has no LICENSE file)"
URL = "https://github.com/junwang4/detecting-health-advice"
CITATION = """@inproceedings{li-etal-2021-detecting,
  title = {Detecting Health Advice in Medical Research Literature},
  author = {Li, Yingya and Wang, Jun and Yu, Bei},
  booktitle = {Proceedings of the 2021 Conference on Empirical Methods in Natural Language Processing},
  pages = {6018--6029},
  year = {2021},
  publisher = {Association for Computational Linguistics},
  url = {https://aclanthology.org/2021.emnlp-main.486},
  doi = {10.18653/v1/2021.emnlp-main.486}
}"""


class HealthAdviceOptions(Options):
    sections: list[Section] = list(SECTIONS)
    """Annotation files to keep (medAlpaca used all three)."""


@register(
    "pubmed_health_advice",
    options=HealthAdviceOptions,
    produces="records",
    summary="PubMed health advice (EMNLP 2021): classify a sentence as strong, weak or no advice",
    license=LICENSE,
    citation=CITATION,
)
def load(paths: Sequence[Path], options: HealthAdviceOptions) -> Iterator[Item]:
    seen: dict[bytes, str] = {}  # hash of (pmid, sentence) -> label of the kept record
    for path in paths:
        yield from _load_file(path, set(options.sections), seen)


def section_from_name(path: Path) -> Section | None:
    m = _NAME.match(path.name)
    return m[1] if m else None  # type: ignore[return-value]


def _section_from_columns(path: Path, columns: Sequence[str]) -> Section:
    if "design" in columns:
        return "structured_abstract"
    if "citation_mentioned" in columns:
        return "discussion"
    if "rel_loc" in columns:
        return "unstructured_abstract"
    raise InputError(
        path,
        f"cannot tell the section: the file name is not annotations_<{'|'.join(SECTIONS)}>.csv "
        f"and the columns {list(columns)} have none of design, citation_mentioned, rel_loc",
        line=1,
    )


def _load_file(path: Path, sections: set[str], seen: dict[bytes, str]) -> Iterator[Item]:
    section = section_from_name(path)
    for line, row in iter_csv(path, required=REQUIRED):
        at = where(path, line)
        if section is None:
            section = _section_from_columns(path, list(row))
        if section not in sections:
            yield Drop("section_not_selected", at, f"section {section}")
            continue
        label = row["label"].strip()
        if label not in OUTPUTS:
            yield Drop("bad_label", at, f"label {label[:20]!r} is not 0, 1 or 2", malformed=True)
            continue
        pmid = row["pmid"].strip()
        if not pmid.isascii() or not pmid.isdigit():
            yield Drop("bad_pmid", at, f"pmid {pmid[:20]!r} is not a number", malformed=True)
            continue
        sentence = row["sentence"].strip()
        if not sentence:
            yield Drop("empty_sentence", at, f"empty sentence cell (pmid {pmid})")
            continue
        key = hashlib.sha256(f"{pmid}\x1f{sentence}".encode()).digest()[:16]
        if key in seen:
            if seen[key] == label:
                yield Drop("duplicate_sentence", at, f"pmid {pmid}: same sentence and label again")
            else:
                yield Drop("conflicting_label", at, f"pmid {pmid}: label {label}, kept label {seen[key]}")
            continue
        meta: dict[str, str | int] = {
            "pmid": pmid,
            "label": int(label),
            "label_name": LABEL_NAMES[label],
            "section": section,
            "file": path.name,
            "license": LICENSE,
            "url": URL,
        }
        design = (row.get("design") or "").strip()
        if design:
            meta["design"] = design
        item = make_record(
            at,
            instruction=INSTRUCTION,
            input=sentence,
            output=OUTPUTS[label],
            source=SOURCE,
            id=content_id(f"{SOURCE}:{pmid}", sentence),
            meta=meta,
        )
        if isinstance(item, Record):
            seen[key] = label
        yield item
