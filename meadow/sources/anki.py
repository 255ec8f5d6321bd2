"""Anki flashcard decks (medAlpaca's "Medical Flashcards", from the Anki Medical Curriculum decks).

(One module of about 540 lines, on purpose: the package reader and the text-export reader share the
note -> passage logic, note types, cloze and sides, which nothing else uses; split, each half would
import the other's privates.)

Formats read (chosen by content, not by name):

- Anki packages, ``.apkg`` / ``.colpkg``: a zip holding the collection as SQLite. Of
  ``collection.anki21b`` (zstd-compressed, Anki >= 2.1.50 exports), ``collection.anki21`` and
  ``collection.anki2`` the newest present is read; the older ones are then placeholders
  ("please update Anki"). Notes come from the ``notes`` table (``flds`` split on ``\\x1f``); the
  note type (field names, cloze or not) from ``col.models`` (legacy JSON) or the
  ``notetypes``/``fields`` tables (newer schema); the deck of the note's first card from
  ``col.decks`` or the ``decks`` table.
- Anki "Notes in Plain Text" exports (``.txt``): one note per row, tab-separated by default,
  fields quoted CSV-style where needed, optionally preceded by the header lines of newer Anki
  (``#separator:tab``, ``#html:true``, ``#guid column:1``, ``#notetype column:2``,
  ``#deck column:3``, ``#tags column:N``, ``#columns:...``). Lines starting with ``#`` are header
  lines only at the top of the file.

Task framing (medAlpaca): each kept note becomes one ``Passage`` (task ``flashcard``) that the
LLM rephrases into a question/answer pair. Its text is exactly::

    Front: <front>
    Back: <back>

- Front/back: the fields named Front and Back when the note type has them, else the first and
  second field. A field named Extra (or Back Extra) that is neither is appended to the back
  on a new line.
- Cloze notes (cloze note type, or, where the type is unknown, ``{{c1::...}}`` in the first
  field): the Text field (else the first) with every cloze replaced by ``[...]`` is the front;
  the same text with the clozes filled in (``{{c1::answer::hint}}`` -> ``answer``), plus
  Extra / Back Extra on a new line, is the back. One passage per note, not per cloze number.
- Fields are HTML (except in text exports with ``#html:false``) and become plain text;
  ``[sound:...]`` tags are removed.

Drops: ``has_image`` (any field of the note has an ``<img>``; medAlpaca removed those cards;
option ``drop_images``), ``empty_text`` (front or back empty after cleaning), ``too_long_text``
(a passage over the length limit), ``invalid_note`` (malformed: a notes row with wrong types).

source = ``anki/<deck>``, where deck is the option ``deck`` or the file stem lower-cased with
runs of other characters than a-z and 0-9 replaced by ``_``. id = ``<source>:<note guid>``
(packages, and text exports with a guid column), else a content hash of the note's fields.
"""

from __future__ import annotations

import csv
import itertools
import json
import re
import shutil
import sqlite3
import tempfile
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import field_validator

from meadow.errors import InputError
from meadow.records import Passage
from meadow.sources import Drop, Options, register
from meadow.sources._common import (
    MEDALPACA_CITATION,
    content_id,
    decoded_lines,
    html_to_text,
    make_passage,
    open_input,
    where,
)

CITATION = MEDALPACA_CITATION

LICENSE = (
    "deck-specific: the AnkiWeb shared decks state no license; medAlpaca's derived "
    "medical_meadow_medical_flashcards is marked 'cc' on the Hugging Face Hub"
)

# Newest first: when a newer collection is present, the older names hold a placeholder note.
_COLLECTIONS = ("collection.anki21b", "collection.anki21", "collection.anki2")
_REEXPORT_HINT = (
    "re-export the deck from Anki with 'Support older Anki versions (slower/larger files)' checked "
    "(this writes collection.anki21), or install the 'backports.zstd' package (Python < 3.14)"
)

_CLOZE = re.compile(r"\{\{c\d+::((?:(?!\{\{c\d+::).)*?)\}\}", re.DOTALL)  # innermost clozes
_SOUND = re.compile(r"\[sound:[^\]]*\]")
_IMG = re.compile(r"<img\b", re.IGNORECASE)
_SLUG = re.compile(r"[^a-z0-9]+")
_SEPARATORS = {"tab": "\t", "comma": ",", "semicolon": ";", "space": " ", "pipe": "|", "colon": ":"}
_META_COLUMNS = ("guid column", "notetype column", "deck column", "tags column")


class AnkiOptions(Options):
    deck: str | None = None
    """Deck name used in the source (``anki/<deck>``); default: derived from the file name."""
    drop_images: bool = True
    """Drop notes with an image in any field (medAlpaca did); False keeps them, images removed."""

    @field_validator("deck")
    @classmethod
    def _deck(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("must not be empty")
        return value.strip() if value is not None else None


@register(
    "anki",
    options=AnkiOptions,
    per_file=True,
    tags=True,
    produces="passages",
    summary="Anki flashcard decks (.apkg packages or plain-text note exports) -> flashcard passages",
    license=LICENSE,
    citation=CITATION,
)
def load(paths: Sequence[Path], options: AnkiOptions) -> Iterator[Passage | Drop]:
    for path in paths:
        path = Path(path)
        deck = options.deck or deck_from_path(path)
        source = f"anki/{deck}"
        if _is_package(path):
            yield from _load_package(path, source, deck, options)
        else:
            yield from _load_text_export(path, source, deck, options)


def deck_from_path(path: Path) -> str:
    """'Anki Medical Curriculum.apkg' -> 'anki_medical_curriculum'."""
    return _SLUG.sub("_", path.stem.lower()).strip("_") or "deck"


def _is_package(path: Path) -> bool:
    with open_input(path, expected="an Anki package (.apkg/.colpkg) or a plain-text notes export") as f:
        magic = f.read(4)
    if magic.startswith(b"PK"):
        return True
    if path.suffix.lower() in (".apkg", ".colpkg"):
        raise InputError(
            path, "not a zip archive: an .apkg/.colpkg file must be a zip holding the collection"
        )
    return False


# ---------------------------------------------------------------- notes -> passages


@dataclass(frozen=True)
class NoteType:
    name: str | None
    fields: tuple[str, ...]
    cloze: bool | None  # None: unknown (decided from the first field)


def _cloze(text: str, *, reveal: bool) -> str:
    def sub(m: re.Match[str]) -> str:
        return m.group(1).split("::", 1)[0] if reveal else "[...]"

    previous = None
    while previous != text:  # nested clozes: innermost first
        previous, text = text, _CLOZE.sub(sub, text)
    return text


def _clean(text: str, html: bool) -> str:
    text = _SOUND.sub("", text)
    if html:
        text = html_to_text(text)
    return text.replace("\xa0", " ").strip()


def _sides(fields: list[str], notetype: NoteType, html: bool) -> tuple[str, str]:
    """(front, back) as plain text, following the field names and the cloze rule above."""
    index: dict[str, int] = {}
    for i, name in enumerate(notetype.fields):
        index.setdefault(name.strip().lower(), i)

    def get(i: int | None) -> str:
        return fields[i] if i is not None and i < len(fields) else ""

    def other_than(*taken: int | None) -> int | None:
        return next((i for i in range(len(fields)) if i not in taken), None)

    cloze = notetype.cloze
    if cloze is None:
        cloze = bool(fields) and _CLOZE.search(fields[0]) is not None
    if cloze:
        text_i = index.get("text", 0)
        extra_i = index.get("back extra", index.get("extra"))
        if extra_i is None:
            extra_i = other_than(text_i)
        text = get(text_i)
        front = _clean(_cloze(text, reveal=False), html)
        back = _clean(_cloze(text, reveal=True), html)
    else:
        front_i = index.get("front", 0)
        back_i = index.get("back")
        if back_i is None:
            back_i = other_than(front_i)
        extra_i = index.get("back extra", index.get("extra"))
        if extra_i in (front_i, back_i):
            extra_i = None
        front = _clean(get(front_i), html)
        back = _clean(get(back_i), html)
    extra = _clean(get(extra_i), html)
    if extra and back:
        back = f"{back}\n{extra}"
    return front, back


def _note_item(
    at: str,
    fields: list[str],
    notetype: NoteType,
    *,
    html: bool,
    options: AnkiOptions,
    source: str,
    note_id: str,
    meta: dict[str, Any],
) -> Passage | Drop:
    if any(_IMG.search(f) for f in fields) and options.drop_images:
        return Drop("has_image", at, "a field contains an <img>")
    front, back = _sides(fields, notetype, html)
    if not front:
        return Drop("empty_text", at, "the front is empty")
    if not back:
        return Drop("empty_text", at, "the back is empty")
    return make_passage(
        at, text=f"Front: {front}\nBack: {back}", source=source, id=note_id, task="flashcard", meta=meta
    )


# ---------------------------------------------------------------- .apkg / .colpkg


def _zstd_module() -> Any:
    try:
        from compression import zstd  # type: ignore[import-not-found]  # Python >= 3.14
    except ImportError:
        try:
            from backports import zstd  # type: ignore[import-not-found,no-redef]
        except ImportError:
            return None
    return zstd


def _load_package(path: Path, source: str, deck: str, options: AnkiOptions) -> Iterator[Passage | Drop]:
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as err:
        raise InputError(path, f"truncated or corrupt zip archive: {err}") from None
    except OSError as err:
        raise InputError(path, f"cannot open: {err.strerror}") from None
    with archive, tempfile.TemporaryDirectory(prefix="meadow-anki-") as tmp:
        names = set(archive.namelist())
        member = next((name for name in _COLLECTIONS if name in names), None)
        if member is None:
            listed = ", ".join(sorted(names)[:10]) or "nothing"
            raise InputError(
                path,
                f"no Anki collection in the archive (expected one of "
                f"{', '.join(_COLLECTIONS)}; found {listed})",
            )
        zstd = None
        if member == "collection.anki21b":
            zstd = _zstd_module()
            if zstd is None:
                if "collection.anki21" not in names:
                    raise InputError(
                        path,
                        "collection.anki21b (zstd-compressed, the default export "
                        "format of Anki >= 2.1.50) is not supported here: " + _REEXPORT_HINT,
                    )
                member, zstd = "collection.anki21", None
        if archive.getinfo(member).file_size == 0:
            raise InputError(path, f"{member} in the archive is empty (0 bytes): expected an Anki collection")
        db = Path(tmp) / "collection.sqlite"
        errors: tuple[type[Exception], ...] = (zipfile.BadZipFile, zlib.error, EOFError, OSError)
        if zstd is not None:
            errors += (zstd.ZstdError,)
        try:
            with archive.open(member) as raw, open(db, "wb") as out:
                if zstd is not None:
                    with zstd.ZstdFile(raw) as unpacked:
                        shutil.copyfileobj(unpacked, out, 1 << 20)
                else:
                    shutil.copyfileobj(raw, out, 1 << 20)
        except errors as err:
            raise InputError(path, f"cannot extract {member} (truncated or corrupt archive): {err}") from None
        con = sqlite3.connect(db)
        try:
            yield from _read_collection(path, member, con, source, deck, options)
        except sqlite3.DatabaseError as err:
            raise InputError(path, f"{member} is not a readable Anki collection (SQLite): {err}") from None
        finally:
            con.close()


def _read_collection(
    path: Path, member: str, con: sqlite3.Connection, source: str, deck: str, options: AnkiOptions
) -> Iterator[Passage | Drop]:
    tables = {row[0] for row in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if "notes" not in tables:
        raise InputError(path, f"{member} has no notes table (tables: {', '.join(sorted(tables)) or 'none'})")
    notetypes = _notetypes(path, member, con, tables)
    decks = _decks(path, member, con, tables)
    first_deck = (
        "(SELECT c.did FROM cards c WHERE c.nid = n.id ORDER BY c.ord LIMIT 1)"
        if "cards" in tables
        else "NULL"
    )
    try:
        rows = con.execute(
            f"SELECT n.id, n.guid, n.mid, n.tags, n.flds, {first_deck} FROM notes n ORDER BY n.id"
        )
    except sqlite3.OperationalError as err:
        raise InputError(
            path, f"{member}: the notes table lacks the expected columns (id, guid, mid, tags, flds): {err}"
        ) from None
    unknown = NoteType(None, (), None)
    for note_id, guid, mid, tags, flds, did in rows:
        at = where(path, record=f"note {note_id}")
        if not isinstance(flds, str) or not isinstance(tags, str | None) or not isinstance(guid, str | None):
            yield Drop(
                "invalid_note",
                at,
                "flds, tags and guid must be text "
                f"(got {type(flds).__name__}, {type(tags).__name__}, {type(guid).__name__})",
                malformed=True,
            )
            continue
        fields = flds.split("\x1f")
        notetype = notetypes.get(mid, unknown) if isinstance(mid, int) else unknown
        nid = f"{source}:{guid}" if guid and guid.strip() else content_id(source, *fields)
        meta = {
            "deck": deck,
            "anki_deck": decks.get(did) if isinstance(did, int) else None,
            "tags": (tags or "").split(),
            "note_id": note_id,
            "note_type": notetype.name,
            "file": path.name,
        }
        yield _note_item(
            at, fields, notetype, html=True, options=options, source=source, note_id=nid, meta=meta
        )


def _json_column(path: Path, member: str, con: sqlite3.Connection, column: str) -> dict[str, Any]:
    try:
        row = con.execute(f"SELECT {column} FROM col").fetchone()
    except sqlite3.OperationalError as err:
        raise InputError(path, f"{member}: cannot read col.{column}: {err}") from None
    if row is None or not row[0]:
        return {}
    try:
        value = json.loads(row[0])
    except (TypeError, ValueError) as err:
        raise InputError(path, f"{member}: col.{column} is not valid JSON: {err}") from None
    if not isinstance(value, dict):
        raise InputError(path, f"{member}: col.{column} is not a JSON object")
    return value


def _notetypes(path: Path, member: str, con: sqlite3.Connection, tables: set[str]) -> dict[int, NoteType]:
    if {"notetypes", "fields"} <= tables:  # schema >= 15
        names: dict[int, list[str]] = {}
        for ntid, name in con.execute("SELECT ntid, name FROM fields ORDER BY ntid, ord"):
            names.setdefault(ntid, []).append(str(name))
        result = {}
        for ntid, name, config in con.execute("SELECT id, name, config FROM notetypes"):
            # NotetypeConfig protobuf: field 1 (kind) = 1 is a cloze note type, serialised first.
            cloze = isinstance(config, bytes) and config[:2] == b"\x08\x01"
            result[ntid] = NoteType(str(name), tuple(names.get(ntid, ())), cloze)
        if result:
            return result
    if "col" not in tables:
        return {}
    result = {}
    for mid, model in _json_column(path, member, con, "models").items():
        if not isinstance(model, dict):
            continue
        flds = [f for f in model.get("flds") or [] if isinstance(f, dict)]
        flds.sort(key=lambda f: f.get("ord") if isinstance(f.get("ord"), int) else 0)
        try:
            key = int(mid)
        except ValueError:
            continue
        result[key] = NoteType(
            str(model.get("name", "")), tuple(str(f.get("name", "")) for f in flds), model.get("type") == 1
        )
    return result


def _decks(path: Path, member: str, con: sqlite3.Connection, tables: set[str]) -> dict[int, str]:
    if "decks" in tables:  # schema >= 15: hierarchy separated by \x1f
        rows = con.execute("SELECT id, name FROM decks").fetchall()
        if rows:
            return {did: str(name).replace("\x1f", "::") for did, name in rows}
    if "col" not in tables:
        return {}
    decks = {}
    for did, value in _json_column(path, member, con, "decks").items():
        if isinstance(value, dict) and did.lstrip("-").isdigit():
            decks[int(did)] = str(value.get("name", ""))
    return decks


# ---------------------------------------------------------------- "Notes in Plain Text" export


def _load_text_export(path: Path, source: str, deck: str, options: AnkiOptions) -> Iterator[Passage | Drop]:
    with open_input(path, expected="a plain-text notes export") as f:
        lines = decoded_lines(path, f)
        header: dict[str, tuple[int, str]] = {}
        n_header = 0
        first: list[str] = []
        for line in lines:
            if not line.startswith("#"):
                first.append(line)
                break
            n_header += 1
            key, sep, value = line[1:].rstrip("\r\n").partition(":")
            if sep:
                header[key.strip().lower()] = (n_header, value.strip())
        delimiter = _separator(path, header)
        html = _html_flag(path, header)
        columns = {key: _column(path, header, key) for key in _META_COLUMNS}
        meta_columns = {c for c in columns.values() if c is not None}
        names: tuple[str, ...] = ()
        if "columns" in header:
            all_names = header["columns"][1].split(delimiter)
            names = tuple(n for i, n in enumerate(all_names, 1) if i not in meta_columns)

        reader = csv.reader(
            itertools.chain(first, lines),
            delimiter=delimiter,
            quotechar='"',
            doublequote=True,
            skipinitialspace=False,
            strict=False,
        )
        while True:
            line = n_header + reader.line_num + 1
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as err:
                raise InputError(path, f"CSV syntax error: {err}", line=line) from None
            if not any(cell.strip() for cell in row):
                continue  # blank line
            yield _text_row(
                path,
                line,
                row,
                columns,
                meta_columns,
                names,
                html=html,
                options=options,
                source=source,
                deck=deck,
            )


def _text_row(
    path: Path,
    line: int,
    row: list[str],
    columns: dict[str, int | None],
    meta_columns: set[int],
    names: tuple[str, ...],
    *,
    html: bool,
    options: AnkiOptions,
    source: str,
    deck: str,
) -> Passage | Drop:
    def cell(key: str) -> str | None:
        c = columns[key]
        return row[c - 1].strip() if c is not None and c <= len(row) else None

    fields = [value for i, value in enumerate(row, 1) if i not in meta_columns]
    guid = cell("guid column")
    notetype_name = cell("notetype column")
    cloze = True if notetype_name and "cloze" in notetype_name.lower() else None
    nid = f"{source}:{guid}" if guid else content_id(source, *fields)
    meta = {
        "deck": deck,
        "anki_deck": cell("deck column") or None,
        "tags": (cell("tags column") or "").split(),
        "note_id": guid or None,
        "note_type": notetype_name or None,
        "file": path.name,
    }
    return _note_item(
        where(path, line),
        fields,
        NoteType(notetype_name, names, cloze),
        html=html,
        options=options,
        source=source,
        note_id=nid,
        meta=meta,
    )


def _separator(path: Path, header: dict[str, tuple[int, str]]) -> str:
    if "separator" not in header:
        return "\t"
    line, value = header["separator"]
    if value.lower() in _SEPARATORS:
        return _SEPARATORS[value.lower()]
    if len(value) == 1:
        return value
    raise InputError(
        path,
        f"unknown #separator {value!r} (expected one of {', '.join(_SEPARATORS)} or a single character)",
        line=line,
    )


def _html_flag(path: Path, header: dict[str, tuple[int, str]]) -> bool:
    if "html" not in header:
        return True
    line, value = header["html"]
    if value.lower() not in ("true", "false"):
        raise InputError(path, f"#html must be true or false, not {value!r}", line=line)
    return value.lower() == "true"


def _column(path: Path, header: dict[str, tuple[int, str]], key: str) -> int | None:
    if key not in header:
        return None
    line, value = header[key]
    if not value.isdigit() or int(value) < 1:
        raise InputError(path, f"#{key} must be a column number from 1, not {value!r}", line=line)
    return int(value)
