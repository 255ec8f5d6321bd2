"""Helpers shared by the loaders: ids, record construction, text cleaning, file access."""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
import re
import sys
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any, TypeVar

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


# --------------------------------------------------------------------------- file access

BOM = b"\xef\xbb\xbf"
_WHITESPACE = b" \t\r\n\f\v"
_T = TypeVar("_T")


def open_input(path: Path, *, expected: str, label: str | Path | None = None) -> IO[bytes]:
    """Open a loader's input file for binary reading, after checking that it holds something.

    A file that cannot be opened, or that is empty (0 bytes, or nothing but a UTF-8 BOM and
    whitespace), raises InputError naming ``label`` (default: the path) and what was
    ``expected`` ("a JSON array or JSON Lines"). Every loader opens its text inputs here,
    so an empty download is an error, never a source that silently yields nothing.
    """
    try:
        f = open(path, "rb")
    except OSError as err:
        raise InputError(label or path, f"cannot open: {err.strerror or err}") from None
    try:
        require_content(f, label or path, expected=expected)
    except BaseException:
        f.close()
        raise
    return f


def require_content(f: IO[bytes], label: str | Path, *, expected: str, unpacked: bool = False) -> None:
    """Raise InputError if the stream holds only a BOM and whitespace (or nothing); rewind it.

    ``unpacked``: the stream is a decompressed member (gzip), so the message says so.
    """
    size = 0
    while chunk := f.read(1 << 16):
        content = chunk.removeprefix(BOM) if size == 0 else chunk
        size += len(chunk)
        if content.strip(_WHITESPACE):
            f.seek(0)
            return
    what = "0 bytes" if size == 0 else f"{size} bytes, only whitespace"
    if unpacked:
        what += ", once decompressed"
    raise InputError(label, f"empty file ({what}): expected {expected}")


def json_error_text(err: json.JSONDecodeError) -> str:
    """'unterminated string starting at column 12': the stdlib message and its column as one phrase."""
    message = err.msg.removesuffix(" at")  # "Unterminated string starting at" + " at column" read "at at"
    return f"{message[:1].lower()}{message[1:]} at column {err.colno}"


_XML_POSITION = re.compile(r",? line \d+, column \d+$")
_XML_OPEN_TAG = re.compile(r"in tag (\S+) line (\d+)$")


def xml_error(label: str | Path, err: lxml.etree.XMLSyntaxError) -> InputError:
    """InputError for lxml's XMLSyntaxError: the line and column, and libxml2's reason said once
    ('premature end of data in <text> (opened on line 4)', without its own 'line 4, column 20')."""
    reason = _XML_POSITION.sub("", " ".join((err.msg or str(err)).split()))
    reason = _XML_OPEN_TAG.sub(r"in <\1> (opened on line \2)", reason)
    reason = reason[:1].lower() + reason[1:]
    line, column = err.position if err.position and err.position[0] else (err.lineno or None, None)
    at = f" at column {column}" if column else ""
    if "encoding" in reason or "utf-8" in reason.lower():
        return InputError(label, f"invalid UTF-8{at} ({reason})", line=line)
    return InputError(label, f"invalid or truncated XML{at}: {reason}", line=line)


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
    expected = "a CSV header line" if fieldnames is None else f"CSV rows of {', '.join(fieldnames)}"
    with open_input(path, expected=expected) as f:
        reader = csv.reader(decoded_lines(path, f), strict=True)  # strict: a cut inside quotes is an error
        line = 1
        try:
            if fieldnames is None:
                header = next(reader, [])  # open_input made sure the file is not empty
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


_JSON_EXPECTED = "a JSON array or JSON Lines"


def iter_json_records(path: Path) -> Iterator[tuple[str, Any]]:
    """Yield ``(at, object)`` from a JSON array file or a JSON Lines file, streaming.

    ``at`` names the file and position, as ``where()`` does: ``'f.json (record N)'``
    (0-based index in the array) or ``'f.jsonl:N'`` (line N of JSON Lines). An empty file,
    truncated or invalid JSON and invalid UTF-8 raise InputError naming the file, the line
    and column, and the record.
    """
    with open_input(path, expected=_JSON_EXPECTED) as f:
        head = f.read(64).lstrip(BOM + _WHITESPACE)
    if head.startswith(b"["):
        for index, obj in enumerate(stream_json(path, _array_items, after=_after_record)):
            yield where(path, record=str(index)), obj
    else:
        for n, obj in iter_jsonl(path):
            yield where(path, line=n), obj


def _array_items(f: Any) -> Iterator[Any]:
    return ijson.items(f, "item", use_float=True)


def _after_record(count: int, last: Any) -> str:
    return f"after record {count - 1}" if count else "before the first record"


def stream_json(
    path: Path,
    parse: Callable[[Any], Iterator[_T]],
    *,
    after: Callable[[int, _T | None], str],
    expected: str = _JSON_EXPECTED,
) -> Iterator[_T]:
    """Yield what the ijson ``parse`` (e.g. ``ijson.items(f, "item")``) reads from the file.

    The file must not be empty (``open_input``); a UTF-8 BOM is skipped. A JSON error raises
    InputError with the line and column where the parser stopped, its reason as plain text
    (yajl's message, decoded: never a ``b'...'`` repr) and ``after(count, last_item)``
    ("after record 11"). Finding the column costs a second parse, on the error path only.
    """
    with open_input(path, expected=expected) as f:
        skip = len(BOM) if f.read(len(BOM)) == BOM else 0
        f.seek(skip)
        reader = _Reader(f)
        count, last = 0, None
        try:
            for item in parse(reader):
                yield item
                count, last = count + 1, item
        except ijson.JSONError as err:
            raise _json_stream_error(path, parse, skip, reader.chunk_start, err, after(count, last)) from None
        except UnicodeDecodeError as err:
            raise InputError(path, f"invalid UTF-8 ({err.reason}), {after(count, last)}") from None


class _Reader:
    """The file as ijson reads it, counting bytes. From byte ``exact_from`` on it hands out one
    byte per read, so that a parse error is raised right after reading the byte at fault."""

    def __init__(self, f: IO[bytes], exact_from: int | None = None) -> None:
        self.f, self.exact_from = f, exact_from
        self.pos = self.chunk_start = 0

    def read(self, n: int = -1) -> bytes:
        if n and self.exact_from is not None:
            left = self.exact_from - self.pos
            n = 1 if left <= 0 else left if n < 0 else min(n, left)
        data = self.f.read(n)
        self.chunk_start, self.pos = self.pos, self.pos + len(data)
        return data


def _json_stream_error(
    path: Path, parse: Callable[[Any], Iterator[Any]], skip: int, chunk_start: int, err: Exception, after: str
) -> InputError:
    reason = err.args[0] if err.args else ""
    if isinstance(reason, bytes):  # yajl hands back bytes when the text near the error is not UTF-8
        reason = reason.decode("utf-8", "replace")
    lines = str(reason).strip().splitlines()  # yajl adds the text around the error and an arrow
    reason = lines[0].strip().rstrip(".") if lines else type(err).__name__
    # Parse again up to the chunk where the error was, then byte by byte: the error's exact offset.
    offset = None
    with open(path, "rb") as f:
        f.seek(skip)
        reader = _Reader(f, exact_from=chunk_start)
        try:
            for _ in parse(reader):
                pass
        except (ijson.JSONError, UnicodeDecodeError):
            offset = skip + max(reader.pos - 1, 0) if reader.pos > reader.chunk_start else skip + reader.pos
    if "premature EOF" in reason or "Incomplete" in reason:
        line, _ = _line_and_column(path, offset) if offset is not None else (None, None)
        return InputError(path, f"truncated JSON: the file ends in the middle of a value, {after}", line=line)
    if "invalid bytes in UTF8" in reason:
        reason = "invalid UTF-8"
    if offset is None:
        return InputError(path, f"invalid JSON {after}: {reason}")
    line, column = _line_and_column(path, offset)
    return InputError(path, f"invalid JSON at column {column}, {after}: {reason}", line=line)


def _line_and_column(path: Path, offset: int) -> tuple[int, int]:
    """1-based line and column (in characters, a BOM not counted) of the byte at ``offset``."""
    line, line_start, pos = 1, 0, 0
    with open(path, "rb") as f:
        while pos < offset and (chunk := f.read(min(1 << 20, offset - pos))):
            nl = chunk.rfind(b"\n")
            if nl >= 0:
                line += chunk.count(b"\n")
                line_start = pos + nl + 1
            pos += len(chunk)
        f.seek(line_start)
        prefix = f.read(offset - line_start)
    return line, len(prefix.decode("utf-8-sig" if line == 1 else "utf-8", "replace")) + 1


def iter_jsonl(path: Path) -> Iterator[tuple[int, Any]]:
    """Yield ``(line, object)`` from a JSON Lines file, gzip-compressed or not (by its magic bytes).

    Blank lines are skipped; a UTF-8 BOM is skipped at the start of any line (files joined
    with ``cat`` keep each part's BOM). An empty file (also once decompressed), invalid JSON,
    invalid UTF-8 and a corrupt or truncated gzip stream raise InputError naming the file
    and line.
    """
    expected = "JSON Lines (one JSON object per line)"
    with open_input(path, expected=expected) as probe:
        compressed = probe.read(2) == b"\x1f\x8b"
    try:
        f = gzip.open(path, "rb") if compressed else open(path, "rb")
    except OSError as err:
        raise InputError(path, f"cannot open: {err.strerror or err}") from None
    n = 0
    with f:
        try:
            if compressed:
                require_content(f, path, expected=expected, unpacked=True)
            for n, raw in enumerate(f, start=1):
                try:
                    text = raw.decode("utf-8").removeprefix("\ufeff")
                except UnicodeDecodeError as err:
                    raise InputError(path, f"invalid UTF-8 ({err.reason})", line=n) from None
                if not text.strip():
                    continue
                try:
                    obj = json.loads(text)
                except json.JSONDecodeError as err:
                    raise InputError(path, f"invalid JSON: {json_error_text(err)}", line=n) from None
                except RecursionError:
                    raise InputError(path, "JSON nested too deeply", line=n) from None
                yield n, obj
        except (EOFError, zlib.error, gzip.BadGzipFile) as err:
            raise InputError(path, f"corrupt or truncated gzip data: {err}", line=n + 1) from None
