"""MEDIQA: consumer health questions with answers (XML) or answer summaries (JSON).

Two published formats are read; each file's format is detected from its first byte.

1. **MEDIQA-AnS** (Savery et al. 2020, https://doi.org/10.17605/OSF.IO/FYG46), the data behind
   medAlpaca's "MEDIQA" (n = 2,208), file ``question_driven_answer_summarization_primary_dataset.json``:
   one JSON object keyed by question id::

       {"<qid>": {"question": str, "multi_abs_summ": str, "multi_ext_summ": str,
                  "answers": {"<qid>_Answer<k>": {"article": str, "section": str, "url": str,
                                                  "answer_abs_summ": str, "answer_ext_summ": str,
                                                  "rating": str}}}}

   Framing: question-driven summarisation. ``instruction`` = :data:`SUMMARY_INSTRUCTION`,
   ``input`` = ``"Question: <question>\\n\\nArticle: <text>"``, ``output`` = the summary.
   One record per answer and *single-document* summary type, where a type pairs the input
   text (``page`` = the full ``article``, ``section`` = the relevant ``section``) with the
   summary (``abs`` = ``answer_abs_summ``, ``ext`` = ``answer_ext_summ``); the four types
   ``page_abs page_ext section_abs section_ext`` over the 552 answers give medAlpaca's
   552 x 4 = 2,208. Optional *multi-document* types ``multi_abs``/``multi_ext`` add one record
   per question (input: the question and the sections of all its answers). The paper's
   evaluation sets have the same split (page2answer / section2answer, single / multi).
   Ids: ``mediqa:<answer id>:<type>`` and ``mediqa:<question id>:<type>``.

2. **MEDIQA 2019 Task 3 QA** XML (github.com/abachaa/MEDIQA2019)::

       <AnyRootName><Question QID><QuestionText/><AnswerList>
         <Answer AID SystemRank ReferenceRank ReferenceScore><AnswerURL/><AnswerText/></Answer>...

   ReferenceScore: 4 excellent, 3 correct but incomplete, 2 related, 1 incorrect. Answers
   scoring at least ``min_reference_score`` (default 3) become ``instruction`` = "Answer this
   question truthfully", ``input`` = the question, ``output`` = the answer text; lower ones are
   dropped as ``low_reference_score``. Streamed with lxml ``iterparse``. AIDs ("1_Answer1")
   repeat across the collections, so ids are ``mediqa:<root element name>:<AID>``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import ijson
from lxml import etree
from pydantic import Field, field_validator

from meadow.errors import InputError
from meadow.records import Record
from meadow.sources import Drop, Options, register
from meadow.sources._common import BOM, make_record, open_input, stream_json, where, xml_error

SOURCE = "mediqa"
QA_INSTRUCTION = "Answer this question truthfully"
SUMMARY_INSTRUCTION = "Summarize the given article to answer the question."

SummaryType = Literal["page_abs", "page_ext", "section_abs", "section_ext", "multi_abs", "multi_ext"]
SINGLE_TYPES: tuple[SummaryType, ...] = ("page_abs", "page_ext", "section_abs", "section_ext")

# summary type -> (text field of the answer, summary field)
_SINGLE_FIELDS = {
    "page_abs": ("article", "answer_abs_summ"),
    "page_ext": ("article", "answer_ext_summ"),
    "section_abs": ("section", "answer_abs_summ"),
    "section_ext": ("section", "answer_ext_summ"),
}
_MULTI_FIELDS = {"multi_abs": "multi_abs_summ", "multi_ext": "multi_ext_summ"}
_INT = re.compile(r"\s*[+-]?\d+\s*")

CITATION = """\
@article{savery2020question,
  title={Question-driven summarization of answers to consumer health questions},
  author={Savery, Max and Abacha, Asma Ben and Gayen, Soumya and Demner-Fushman, Dina},
  journal={Scientific Data}, volume={7}, number={1}, pages={322}, year={2020},
  publisher={Nature Publishing Group UK London}
}
@inproceedings{abacha2019overview,
  title={Overview of the MEDIQA 2019 Shared Task on Textual Inference, Question Entailment and
         Question Answering},
  author={Ben Abacha, Asma and Shivade, Chaitanya and Demner-Fushman, Dina},
  booktitle={Proceedings of the 18th BioNLP Workshop and Shared Task}, pages={370--379}, year={2019}
}"""


class MediqaOptions(Options):
    min_reference_score: int = Field(
        3,
        ge=1,
        le=4,
        description="MEDIQA 2019 QA XML: keep answers with ReferenceScore >= this (4 = excellent)",
    )
    summary_types: list[SummaryType] = Field(
        default_factory=lambda: list(SINGLE_TYPES),
        min_length=1,
        description="MEDIQA-AnS: which summaries become records; the default four give medAlpaca's 2,208",
    )

    @field_validator("summary_types")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError(f"summary types must not repeat: {value}")
        return value


@register(
    SOURCE,
    options=MediqaOptions,
    per_file=True,
    produces="records",
    summary="MEDIQA-AnS answer summaries (JSON) and MEDIQA 2019 QA answers (XML), consumer health",
    license="no license stated (MEDIQA 2019 repo has no LICENSE; MEDIQA-AnS: OSF fyg46); cite the papers",
    citation=CITATION,
)
def load(paths: Sequence[Path], options: MediqaOptions) -> Iterator[Record | Drop]:
    for path in paths:
        path = Path(path)
        kind = _sniff(path)
        if kind == "xml":
            yield from _load_qa_xml(path, options)
        else:
            yield from _load_ans_json(path, options)


def _sniff(path: Path) -> Literal["xml", "json"]:
    with open_input(path, expected="MEDIQA 2019 QA XML or MEDIQA-AnS JSON") as f:
        head = f.read(4096)
    head = head.removeprefix(BOM).lstrip()
    if head.startswith(b"<"):
        return "xml"
    if head.startswith(b"{"):
        return "json"
    start = head[:20].decode("utf-8", "replace")  # the text, not a bytes repr
    raise InputError(
        path,
        f"unknown format (starts with {start!r}): expected MEDIQA 2019 QA XML or a MEDIQA-AnS "
        "JSON object keyed by question id",
    )


# --- MEDIQA 2019 Task 3 QA (XML) --------------------------------------------------------


def _load_qa_xml(path: Path, options: MediqaOptions) -> Iterator[Record | Drop]:
    with open(path, "rb") as f:
        try:
            yield from _iter_questions(path, f, options)
        except etree.XMLSyntaxError as err:
            raise xml_error(path, err) from None


def _iter_questions(path: Path, f: Any, options: MediqaOptions) -> Iterator[Record | Drop]:
    # huge_tree: a text node over libxml2's 10 MB limit must parse (and is then dropped as too long)
    context = etree.iterparse(
        f, events=("start", "end"), huge_tree=True, resolve_entities=False, no_network=True
    )
    root_tag: str | None = None
    for event, el in context:
        if root_tag is None:
            root_tag = el.tag if isinstance(el.tag, str) else "root"  # the collection's name
            continue
        if event != "end" or el.tag != "Question":
            continue
        yield from _qa_question(path, root_tag, el, options)
        # bounded memory: drop the finished question and everything before it
        el.clear(keep_tail=True)
        parent = el.getparent()
        while parent is not None and el.getprevious() is not None:
            del parent[0]


def _text(el: Any) -> str | None:
    return None if el is None else "".join(el.itertext()).strip()


def _int_or_none(value: str | None) -> int | None:
    return int(value) if value is not None and _INT.fullmatch(value) else None


def _qa_question(path: Path, collection: str, q: Any, options: MediqaOptions) -> Iterator[Record | Drop]:
    qid = q.get("QID")
    question = _text(q.find("QuestionText"))
    answers = q.findall("AnswerList/Answer")
    if not answers:
        yield Drop("no_answers", where(path, q.sourceline, f"question {qid}"), "question has no <Answer>")
        return
    for a in answers:
        aid = a.get("AID")
        at = where(path, a.sourceline, aid if aid else f"question {qid}, answer without AID")
        if not aid:
            yield Drop("missing_answer_id", at, "<Answer> has no AID attribute", malformed=True)
            continue
        raw_score = a.get("ReferenceScore")
        if raw_score is None:
            yield Drop(
                "missing_reference_score", at, "<Answer> has no ReferenceScore attribute", malformed=True
            )
            continue
        score = _int_or_none(raw_score)
        if score is None or not 1 <= score <= 4:
            yield Drop(
                "invalid_reference_score", at, f"ReferenceScore={raw_score!r}, expected 1-4", malformed=True
            )
            continue
        if score < options.min_reference_score:
            yield Drop("low_reference_score", at, f"ReferenceScore {score} < {options.min_reference_score}")
            continue
        if question is None:
            yield Drop("missing_question_text", at, f"question {qid} has no <QuestionText>", malformed=True)
            continue
        if not question:
            yield Drop("empty_question", at, f"question {qid} has an empty <QuestionText>")
            continue
        answer = _text(a.find("AnswerText"))
        if answer is None:
            yield Drop("missing_answer_text", at, "<Answer> has no <AnswerText>", malformed=True)
            continue
        yield make_record(
            at,
            instruction=QA_INSTRUCTION,
            input=question,
            output=answer,
            source=SOURCE,
            id=f"{SOURCE}:{collection}:{aid}",
            meta={
                "format": "mediqa2019_qa",
                "collection": collection,
                "question_id": qid,
                "answer_id": aid,
                "reference_score": score,
                "reference_rank": _int_or_none(a.get("ReferenceRank")),
                "system_rank": _int_or_none(a.get("SystemRank")),
                "url": _text(a.find("AnswerURL")) or None,
                "file": path.name,
            },
        )


# --- MEDIQA-AnS (JSON) ------------------------------------------------------------------


def _load_ans_json(path: Path, options: MediqaOptions) -> Iterator[Record | Drop]:
    questions = stream_json(path, _ans_items, after=_after_question, expected="a MEDIQA-AnS JSON object")
    for qid, question in questions:
        yield from _ans_question(path, qid, question, options)


def _ans_items(f: Any) -> Iterator[tuple[str, Any]]:
    return ijson.kvitems(f, "", use_float=True)


def _after_question(count: int, last: tuple[str, Any] | None) -> str:
    return f"after question {last[0]!r}" if last else "before the first question"


def _str_field(obj: dict[str, Any], key: str) -> str | None:
    value = obj.get(key)
    return value if isinstance(value, str) else None


def _ans_question(path: Path, qid: str, q: Any, options: MediqaOptions) -> Iterator[Record | Drop]:
    at_q = where(path, record=f"question {qid}")
    if not isinstance(q, dict):
        yield Drop("invalid_question", at_q, f"expected an object, found {type(q).__name__}", malformed=True)
        return
    question = _str_field(q, "question")
    answers = q.get("answers")
    if question is None or not isinstance(answers, dict):
        yield Drop(
            "invalid_question", at_q, "'question' must be a string and 'answers' an object", malformed=True
        )
        return
    question = question.strip()
    if not question:
        yield Drop("empty_question", at_q, "'question' is empty")
        return
    singles = [t for t in options.summary_types if t in _SINGLE_FIELDS]
    multis = [t for t in options.summary_types if t in _MULTI_FIELDS]
    sections: list[str] = []
    for aid, ans in answers.items():
        at_a = where(path, record=f"answer {aid}")
        if not isinstance(ans, dict):
            yield Drop(
                "invalid_answer", at_a, f"expected an object, found {type(ans).__name__}", malformed=True
            )
            continue
        section = _str_field(ans, "section")
        if section and section.strip():
            sections.append(section.strip())
        for stype in singles:
            yield _single_summary(path, qid, question, aid, ans, stype)
    for stype in multis:
        at = where(path, record=f"question {qid}, {stype}")
        summary = _str_field(q, _MULTI_FIELDS[stype])
        if summary is None:
            yield Drop(
                "missing_field", at, f"'{_MULTI_FIELDS[stype]}' missing or not a string", malformed=True
            )
        elif not sections:
            yield Drop("empty_section", at, "no answer of this question has a section text")
        else:
            yield make_record(
                at,
                instruction=SUMMARY_INSTRUCTION,
                input=f"Question: {question}\n\nArticles:\n\n" + "\n\n".join(sections),
                output=summary.strip(),
                source=SOURCE,
                id=f"{SOURCE}:{qid}:{stype}",
                meta={
                    "format": "mediqa_ans",
                    "question_id": qid,
                    "summary_type": stype,
                    "n_answers": len(sections),
                    "file": path.name,
                },
            )


def _single_summary(
    path: Path, qid: str, question: str, aid: str, ans: dict[str, Any], stype: str
) -> Record | Drop:
    text_field, summary_field = _SINGLE_FIELDS[stype]
    at = where(path, record=f"answer {aid}, {stype}")
    text = _str_field(ans, text_field)
    summary = _str_field(ans, summary_field)
    if text is None or summary is None:
        missing = text_field if text is None else summary_field
        return Drop("missing_field", at, f"'{missing}' missing or not a string", malformed=True)
    if not text.strip():
        return Drop(f"empty_{text_field}", at, f"'{text_field}' is empty")
    rating = ans.get("rating")
    url = _str_field(ans, "url")
    return make_record(
        at,
        instruction=SUMMARY_INSTRUCTION,
        input=f"Question: {question}\n\nArticle: {text.strip()}",
        output=summary.strip(),
        source=SOURCE,
        id=f"{SOURCE}:{aid}:{stype}",
        meta={
            "format": "mediqa_ans",
            "question_id": qid,
            "answer_id": aid,
            "summary_type": stype,
            "url": url,
            "rating": rating if isinstance(rating, (str, int, float)) else None,
            "file": path.name,
        },
    )
