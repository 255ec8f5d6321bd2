"""Helpers shared by the loaders: ids, record construction, text cleaning, file access."""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import re
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ijson
import lxml.html
from pydantic import ValidationError

from meadow.errors import InputError
from meadow.records import Passage, Record, describe_validation_error
from meadow.sources import Drop

MEDALPACA_CITATION = """\
@article{han2023medalpaca,
  title={MedAlpaca -- An Open-Source Collection of Medical Conversational AI Models and Training Data},
  author={Han, Tianyu and Adams, Lisa C. and Papaioannou, Jens-Michalis and Grundmann, Paul and
          Oberhauser, Tom and L{\\"o}ser, Alexander and Truhn, Daniel and Bressem, Keno K.},
  journal={arXiv preprint arXiv:2304.08247},
  year={2023}
}"""
"""For the sources that medAlpaca made itself (flashcards, WikiDoc, the USMLE compilation)."""


def content_id(source: str, *parts: str) -> str:
    """A stable id for upstream rows that have none: a hash of their content, never a row number."""
    h = hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:16]
    return f"{source}:{h}"


def where(path: Path | str, line: int | None = None, record: str | None = None) -> str:
    text = str(path)
    if line is not None:
        text += f":{line}"
    if record is not None:
        text += f" (record {record})"
    return text


def make_record(at: str, **fields: Any) -> Record | Drop:
    """Build a Record; a row that fails validation becomes a counted Drop naming the field.

    Empty required text is an ordinary upstream gap (reason ``empty_<field>``); anything
    else (wrong types, NUL bytes) is malformed input (reason ``invalid_record``).
    """
    return _make(Record, at, fields)


def make_passage(at: str, **fields: Any) -> Passage | Drop:
    return _make(Passage, at, fields)


def _make(cls: type[Record] | type[Passage], at: str, fields: dict[str, Any]) -> Any:
    try:
        return cls(**fields)
    except ValidationError as err:
        errors = err.errors()
        for kind, marker in (("empty", "must not be empty"), ("too_long", "longer than")):
            hits = [e for e in errors if marker in e["msg"]]
            if len(hits) == len(errors):
                field = str(hits[0]["loc"][0])
                return Drop(f"{kind}_{field}", at, describe_validation_error(err))
        return Drop("invalid_record", at, describe_validation_error(err), malformed=True)


_BLOCK = {
    "p",
    "div",
    "pre",
    "blockquote",
    "ul",
    "ol",
    "li",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "table",
    "tr",
    "hr",
    "br",
    "dl",
    "dt",
    "dd",
}
_SPACES = re.compile(r"[ \t\r\f\v]+")
_BLANKS = re.compile(r"\n{3,}")
_PRE = "\x01"
_BULLET = re.compile(r"^- *\n+(?=\S)", re.MULTILINE)


def html_to_text(html: str) -> str:
    """Plain text from an HTML fragment (StackExchange bodies, Anki fields).

    Block elements become line breaks, list items get a '- ' bullet, <pre> keeps its
    whitespace, entities are decoded, non-breaking spaces become spaces; images and
    scripts are removed. Outside <pre>, newlines are spaces, as in HTML.
    """
    out: list[str] = []
    if "<" in html or "&" in html:
        try:
            root = lxml.html.fragment_fromstring(html, create_parent="div")
        except (lxml.etree.ParserError, ValueError):
            out.append(_inline(html, False))
        else:
            _walk(root, out, pre=False)
    else:
        out.append(_inline(html, False))
    text = "".join(out).replace("\xa0", " ")
    # Lines from <pre> carry a \x01 marker: their whitespace is kept as written.
    lines = [
        ln.replace(_PRE, "").rstrip() if _PRE in ln else _SPACES.sub(" ", ln).strip()
        for ln in text.split("\n")
    ]
    text = _BULLET.sub("- ", "\n".join(lines))  # <li><p>x</p></li>: keep the bullet on its text
    return _BLANKS.sub("\n\n", text).strip()


def _inline(text: str, pre: bool) -> str:
    return _PRE + text.replace("\n", "\n" + _PRE) if pre else text.replace("\n", " ")


def _walk(el: Any, out: list[str], *, pre: bool) -> None:
    tag = el.tag if isinstance(el.tag, str) else ""
    if tag in ("script", "style", "img"):
        if el.tail:
            out.append(_inline(el.tail, pre))
        return
    in_pre = pre or tag == "pre"
    if tag in _BLOCK:
        out.append("\n")
    if tag == "li":
        out.append("- ")
    if el.text:
        out.append(_inline(el.text, in_pre))
    for child in el:
        _walk(child, out, pre=in_pre)
    if tag in _BLOCK and tag not in ("li", "br"):
        out.append("\n")
    if el.tail:
        out.append(_inline(el.tail, pre))


# A 10 MB cell must parse (and then be dropped as too long), not crash the csv module.
csv.field_size_limit(min(sys.maxsize, 1 << 31 - 1))


def decoded_lines(path: Path, f: Any) -> Iterator[str]:
    """Decode a binary file line by line, so invalid UTF-8 is reported with its line number."""
    for n, raw in enumerate(f, start=1):
        try:
            yield raw.decode("utf-8-sig" if n == 1 else "utf-8")
        except UnicodeDecodeError as err:
            raise InputError(
                path, f"invalid UTF-8 at byte {err.start} of the line ({err.reason})", line=n
            ) from None


def iter_csv(
    path: Path, *, required: tuple[str, ...] = (), fieldnames: list[str] | None = None
) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield ``(line, row)`` from a CSV file, streaming.

    ``line`` is the physical line where the record starts (1-based, header is line 1).
    With ``fieldnames`` the file is read as headerless. A missing required column, a
    row with the wrong number of fields, a csv syntax error or invalid UTF-8 raise
    InputError naming the file and line.
    """
    try:
        f = open(path, "rb")
    except OSError as err:
        raise InputError(path, f"cannot open: {err.strerror}") from None
    with f:
        reader = csv.reader(decoded_lines(path, f), strict=True)  # strict: a cut inside quotes is an error
        line = 1
        try:
            if fieldnames is None:
                header = next(reader, None)
                if header is None:
                    raise InputError(path, "empty file: expected a CSV header line", line=1)
                missing = [c for c in required if c not in header]
                if missing:
                    raise InputError(path, f"missing column(s) {missing}; header has {header}", line=1)
                names = header
            else:
                names = fieldnames
            width = len(names)
            while True:
                line = reader.line_num + 1
                try:
                    row = next(reader)
                except StopIteration:
                    return
                if not row:
                    continue
                if len(row) != width:
                    raise InputError(
                        path, f"expected {width} fields ({', '.join(names)}), found {len(row)}", line=line
                    )
                yield line, dict(zip(names, row, strict=True))
        except csv.Error as err:
            hint = " (the file ends inside a quoted field: truncated?)" if "end of data" in str(err) else ""
            raise InputError(path, f"CSV syntax error: {err}{hint}", line=line) from None


def iter_json_records(path: Path) -> Iterator[tuple[str, Any]]:
    """Yield ``(at, object)`` from a JSON array file or a JSON Lines file, streaming.

    ``at`` names the file and position, as ``where()`` does: ``'f.json (record N)'``
    (0-based index in the array) or ``'f.jsonl:N'`` (line N of JSON Lines). Truncated or
    invalid JSON and invalid UTF-8 raise InputError naming the file and the record or line.
    """
    with open(path, "rb") as f:
        head = f.read(64).lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"["):
        yield from _iter_json_array(path)
    else:
        yield from _iter_json_lines(path)


def _iter_json_array(path: Path) -> Iterator[tuple[str, Any]]:
    index = 0
    with open(path, "rb") as f:
        if f.read(3) != b"\xef\xbb\xbf":
            f.seek(0)
        try:
            for index, obj in enumerate(ijson.items(f, "item", use_float=True)):
                yield where(path, record=str(index)), obj
        except ijson.JSONError as err:
            first = str(err).splitlines()[0]
            raise InputError(path, f"invalid or truncated JSON after record {index}: {first}") from None
        except UnicodeDecodeError as err:
            raise InputError(path, f"invalid UTF-8 after record {index} ({err.reason})") from None


def _iter_json_lines(path: Path) -> Iterator[tuple[str, Any]]:
    for n, obj in iter_jsonl(path):
        yield where(path, line=n), obj


def iter_jsonl(path: Path) -> Iterator[tuple[int, Any]]:
    """Yield ``(line, object)`` from a JSON Lines file, gzip-compressed or not (by its magic bytes).

    Invalid JSON, invalid UTF-8 and a corrupt or truncated gzip stream raise InputError
    naming the file and line.
    """
    try:
        with open(path, "rb") as probe:
            compressed = probe.read(2) == b"\x1f\x8b"
        f = gzip.open(path, "rb") if compressed else open(path, "rb")
    except OSError as err:
        raise InputError(path, f"cannot open: {err.strerror or err}") from None
    n = 0
    with f:
        try:
            for n, raw in enumerate(f, start=1):
                if not raw.strip():
                    continue
                try:
                    obj = json.loads(raw.decode("utf-8-sig" if n == 1 else "utf-8"))
                except UnicodeDecodeError as err:
                    raise InputError(path, f"invalid UTF-8 ({err.reason})", line=n) from None
                except json.JSONDecodeError as err:
                    raise InputError(path, f"invalid JSON: {err.msg} at column {err.colno}", line=n) from None
                except RecursionError:
                    raise InputError(path, "JSON nested too deeply", line=n) from None
                yield n, obj
        except (EOFError, zlib.error, gzip.BadGzipFile) as err:
            raise InputError(path, f"corrupt or truncated gzip data: {err}", line=n + 1) from None
