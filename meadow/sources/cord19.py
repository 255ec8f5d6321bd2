"""CORD-19 ``metadata.csv``: paper abstracts summarised to their titles.

Format read: the ``metadata.csv`` of a CORD-19 release (Allen Institute for AI, 2020-2022),
a comma-separated file with a header line, UTF-8, RFC 4180 quoting (fields may span
lines). The releases since 2020-04 have 19 columns::

    cord_uid,sha,source_x,title,doi,pmcid,pubmed_id,license,abstract,publish_time,authors,
    journal,mag_id,who_covidence_id,arxiv_id,pdf_json_files,pmc_json_files,url,s2_id

Only ``cord_uid``, ``title`` and ``abstract`` are required (a file without them raises
InputError at line 1); ``doi``, ``pubmed_id``, ``license``, ``publish_time`` and
``source_x`` are copied into ``meta`` when present. The final releases have more than
a million rows: the file is streamed row by row (``iter_csv``); the only state kept is
the set of ``cord_uid`` values already emitted.

Task framing (medAlpaca's ``medical_meadow_cord19``): one record per paper,

- instruction: ``"Please summerize the given abstract to a title"`` (medAlpaca's exact
  wording, misspelling included; option ``instruction`` overrides it),
- input: the abstract,
- output: the title.

Drops: ``no_abstract`` and ``no_title`` (empty or whitespace-only cell),
``duplicate_cord_uid`` (metadata.csv has several rows for one paper, one per source or
version, sharing the ``cord_uid``: only the first row of a ``cord_uid`` that becomes a
record is kept, so ids stay unique; a row without abstract does not claim its
``cord_uid``, so a later row of the same paper that has one is used), and the field
checks of ``make_record`` (``too_long_input`` for a runaway abstract, ``invalid_record``
for a NUL byte). Record id: ``cord19:<cord_uid>``.

Splittable (``meadow.sources.SourceSpec.splittable``): ``span`` yields the items of the rows
that start inside it; the rows before it are read for the ``cord_uid`` values they claim. A
final release's one metadata.csv is then screened by several workers at once.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Sequence
from pathlib import Path

from meadow.records import Record
from meadow.sources import Drop, Item, Options, Span, register
from meadow.sources._common import iter_csv, make_record, where

SOURCE = "cord19"
INSTRUCTION = "Please summerize the given abstract to a title"
REQUIRED = ("cord_uid", "title", "abstract")
_META = ("doi", "pubmed_id", "license", "publish_time", "source_x")

CITATION = """@inproceedings{wang-etal-2020-cord,
  title = {{CORD-19}: The {COVID-19} Open Research Dataset},
  author = {Wang, Lucy Lu and Lo, Kyle and Chandrasekhar, Yoganand and Reas, Russell and
            Yang, Jiangjiang and Burdick, Doug and Eide, Darrin and Funk, Kathryn and
            Katsis, Yannis and Kinney, Rodney Michael and Li, Yunyao and Liu, Ziyang and
            Merrill, William and Mooney, Paul and Murdick, Dewey A. and Rishi, Devvret and
            Sheehan, Jerry and Shen, Zhihong and Stilson, Brandon and Wade, Alex D. and
            Wang, Kuansan and Wang, Nancy Xin Ru and Wilhelm, Christopher and Xie, Boya and
            Raymond, Douglas M. and Weld, Daniel S. and Etzioni, Oren and Kohlmeier, Sebastian},
  booktitle = {Proceedings of the 1st Workshop on {NLP} for {COVID-19} at {ACL} 2020},
  year = {2020},
  url = {https://aclanthology.org/2020.nlpcovid19-acl.1}
}"""


class Cord19Options(Options):
    instruction: str = INSTRUCTION
    """The instruction of every record; medAlpaca's wording by default."""


@register(
    "cord19",
    options=Cord19Options,
    produces="records",
    summary="CORD-19 metadata.csv: summarise an abstract to the paper's title",
    license="per row (metadata.csv 'license' column: cc-by, cc0, no-cc, ...); see the CORD-19 terms of use",
    citation=CITATION,
    splittable=True,
)
def load(paths: Sequence[Path], options: Cord19Options, span: Span | None = None) -> Iterator[Item]:
    seen: set[str] = set()
    instruction = options.instruction
    (first, start), (last, end) = span or ((0, 0), (len(paths), 0))
    for index, path in enumerate(paths[: last + 1]):
        if index == last and end == 0:
            break  # the span ends where this file starts
        if index < first:  # wholly before the span: read for the cord_uids it claims
            deque(_load_file(path, instruction, seen), maxlen=0)
            continue
        begin = start if index == first else 0
        stop = end if index == last else None
        for line, item in _load_file(path, instruction, seen, stop):
            if line >= begin:
                yield item


def _load_file(
    path: Path, instruction: str, seen: set[str], stop: int | None = None
) -> Iterator[tuple[int, Item]]:
    """``(line, item)`` of the rows starting before line ``stop`` (None: every row)."""
    for line, row in iter_csv(path, required=REQUIRED):
        if stop is not None and line >= stop:
            return
        uid = row["cord_uid"].strip()
        abstract = row["abstract"].strip()
        if not abstract:
            yield line, Drop("no_abstract", where(path, line), f"cord_uid {uid}")
            continue
        title = row["title"].strip()
        if not title:
            yield line, Drop("no_title", where(path, line), f"cord_uid {uid}")
            continue
        if not uid:
            yield line, Drop("no_cord_uid", where(path, line), "empty cord_uid cell", malformed=True)
            continue
        if uid in seen:
            yield line, Drop("duplicate_cord_uid", where(path, line), f"cord_uid {uid} already used")
            continue
        meta: dict[str, str | None] = {"cord_uid": uid}
        for key in _META:
            meta[key] = row.get(key) or None
        item = make_record(
            where(path, line),
            instruction=instruction,
            input=abstract,
            output=title,
            source=SOURCE,
            id=f"{SOURCE}:{uid}",
            meta=meta,
        )
        if isinstance(item, Record):
            seen.add(uid)
        yield line, item
