"""Stack Exchange answers matched to their questions, from the Hugging Face dataset.

``stackexchange_hf``: the Hugging Face dataset ``HuggingFaceH4/stack-exchange-preferences``
(parquet; one row per question with at least two answers). Columns: ``qid`` (int64),
``question`` (HTML body; the title is not in the dataset), ``answers`` (list of structs
``answer_id`` int64, ``author`` string, ``author_id`` int64, ``author_profile`` string,
``pm_score`` int64, ``selected`` bool, ``text`` HTML string), ``date`` (string) and
``metadata`` (list of URL strings: question, site, asker). Read in batches with pyarrow.

The framing, ids, sites, score rule and text conversion are the dump loader's (meadow/sources/
stackexchange.py, whose docstring says them); the dataset has no title, so instruction = the
whole question as Markdown and input is empty; its ``pm_score`` is mapped onto ``min_score``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from pydantic import Field

from meadow.errors import InputError
from meadow.records import Record
from meadow.sources import Drop, Options, register
from meadow.sources._common import make_record, where
from meadow.sources.stackexchange import (
    HOST,
    SITE_PATTERN,
    URL_HOST,
    as_int,
    canonical_host,
    no_site,
    resolve_site,
    to_text,
)

HF_LICENSE = "CC BY-SA 4.0"

HF_CITATION = """@online{h4stackexchange,
  author = {Lambert, Nathan and Tunstall, Lewis and Rajani, Nazneen and Thrush, Tristan},
  title = {HuggingFace H4 Stack Exchange Preference Dataset},
  year = 2023,
  url = {https://huggingface.co/datasets/HuggingFaceH4/stack-exchange-preferences},
}"""


class StackExchangeHFOptions(Options):
    site: str | None = Field(
        default=None,
        pattern=SITE_PATTERN,
        description="site name; default: from the file or folder name, else from the row's metadata URLs",
    )
    min_score: int = Field(
        default=5,
        description="keep answers with at least this many votes, mapped onto pm_score "
        "(pm_score - selected >= round(log2(1 + min_score)); exact for 5)",
    )
    min_pm_score: int | None = Field(
        default=None, description="threshold on pm_score itself; overrides min_score when set"
    )


HF_REQUIRED = ("qid", "question", "answers")
HF_OPTIONAL = ("date", "metadata")
_HF_BATCH_ROWS = 256


def pm_threshold(min_score: int) -> int:
    """The pm_score bucket of ``min_score`` votes: round(log2(1 + votes)); -1 for negative votes."""
    return round(math.log2(1 + min_score)) if min_score >= 0 else -1


def _metadata_urls(value: Any) -> list[str]:
    if isinstance(value, (list, tuple)):
        return [v for v in value if isinstance(v, str)]
    return [value] if isinstance(value, str) else []


def _host_from_urls(urls: list[str]) -> str | None:
    for url in urls:
        m = URL_HOST.match(url)
        if m and HOST.match(m.group(1)):
            return canonical_host(m.group(1))
    return None


def _iter_parquet(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(row index, row) from a parquet file in bounded batches; unreadable files raise InputError."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as err:
        raise InputError(path, f"not a readable parquet file: {err}") from None
    names = pf.schema_arrow.names
    missing = [c for c in HF_REQUIRED if c not in names]
    if missing:
        raise InputError(
            path,
            f"missing column(s) {missing}; the file has {names} "
            "(expected the HuggingFaceH4/stack-exchange-preferences layout)",
        )
    columns = list(HF_REQUIRED) + [c for c in HF_OPTIONAL if c in names]
    index = 0
    try:
        for batch in pf.iter_batches(batch_size=_HF_BATCH_ROWS, columns=columns):
            try:
                rows = batch.to_pylist()
            except UnicodeDecodeError as err:
                raise InputError(
                    path,
                    f"invalid UTF-8 in a string ({err.reason})",
                    record=str(index + _bad_utf8_row(batch)),
                ) from None
            for row in rows:
                yield index, row
                index += 1
    except (pa.ArrowException, OSError) as err:
        raise InputError(
            path, f"cannot read the parquet data after {index} rows: {err}", record=str(index)
        ) from None


def _bad_utf8_row(batch: Any) -> int:
    """Index in ``batch`` of the first row whose strings are not valid UTF-8."""
    for i in range(batch.num_rows):
        try:
            batch.slice(i, 1).to_pylist()
        except UnicodeDecodeError:
            return i
    return 0


def _hf_answer_problem(answer: Any) -> str | None:
    if not isinstance(answer, dict):
        return f"answer is {type(answer).__name__}, expected a struct"
    for key in ("answer_id", "pm_score"):
        if as_int(answer.get(key)) is None:
            return f"answer {key} is {answer.get(key)!r}, expected an integer"
    if not isinstance(answer.get("selected"), bool):
        return f"answer selected is {answer.get('selected')!r}, expected a boolean"
    if not isinstance(answer.get("text"), str):
        return f"answer text is {type(answer.get('text')).__name__}, expected a string"
    return None


def _hf_rows(path: Path, options: StackExchangeHFOptions) -> Iterator[Record | Drop]:
    threshold = options.min_pm_score
    bucket = pm_threshold(options.min_score)
    file_site = resolve_site(options.site, path)  # None: taken from each row's metadata URLs
    for index, row in _iter_parquet(path):
        at = where(path, record=str(index))
        qid, question, answers = as_int(row.get("qid")), row.get("question"), row.get("answers")
        problem = (
            f"qid is {row.get('qid')!r}, expected an integer"
            if qid is None
            else f"question is {type(question).__name__}, expected a string"
            if not isinstance(question, str)
            else f"answers is {type(answers).__name__}, expected a list"
            if not isinstance(answers, list)
            else None
        )
        if problem:
            yield Drop("malformed_row", at, problem, malformed=True)
            continue
        if not answers:
            yield Drop("no_answers", at, f"question {qid} has no answers")
            continue
        urls = _metadata_urls(row.get("metadata"))
        resolved = file_site or resolve_site(None, path, _host_from_urls(urls))
        if resolved is None:
            raise no_site(f"{path} (record {index})")
        site, host = resolved
        source = f"stackexchange/{site}"
        instruction = to_text(question, host)
        question_url = next((u for u in urls if "/questions/" in u), f"https://{host}/questions/{qid}")
        for answer in answers:
            answer_id = as_int(answer.get("answer_id")) if isinstance(answer, dict) else None
            at = where(path, record=f"{index}, answer {answer_id if answer_id is not None else '?'}")
            problem = _hf_answer_problem(answer)
            if problem:
                yield Drop("malformed_row", at, problem, malformed=True)
                continue
            pm_score, selected = answer["pm_score"], answer["selected"]
            if threshold is not None:
                kept, rule = pm_score >= threshold, f"pm_score {pm_score} < {threshold}"
            else:
                kept = pm_score - int(selected) >= bucket
                rule = f"pm_score {pm_score} (selected={selected}) means fewer than {options.min_score} votes"
            if not kept:
                yield Drop("score_below_min", at, rule)
                continue
            yield make_record(
                at,
                instruction=instruction,
                input="",
                output=to_text(answer["text"], host),
                source=source,
                id=f"{source}:{answer_id}",
                meta={
                    "question_id": qid,
                    "answer_id": answer_id,
                    "pm_score": pm_score,
                    "accepted": selected,
                    "date": row.get("date") if isinstance(row.get("date"), str) else None,
                    "license": HF_LICENSE,
                    "url": f"https://{host}/a/{answer_id}",
                    "question_url": question_url,
                },
            )


@register(
    "stackexchange_hf",
    options=StackExchangeHFOptions,
    per_file=True,
    produces="records",
    summary="HuggingFaceH4/stack-exchange-preferences parquet: answers of >= 5 votes (via pm_score) "
    "and their question",
    license="CC BY-SA 4.0",
    citation=HF_CITATION,
)
def load_hf(paths: Sequence[Path], options: StackExchangeHFOptions) -> Iterator[Record | Drop]:
    for path in paths:
        yield from _hf_rows(Path(path), options)
