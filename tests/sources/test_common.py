"""Tests of the file access shared by the loaders (meadow.sources._common): empty inputs, the
wording and position of JSON and XML errors, and the byte-level quirks of published files."""

from __future__ import annotations

import gzip
import zipfile
from pathlib import Path

import py7zr
import pytest

from meadow.errors import InputError
from meadow.sources import get, registry
from meadow.sources._common import iter_csv, iter_json_records, iter_jsonl, open_input

# --------------------------------------------------------------------------- empty inputs

# Per loader: options and the file names it reads (a name it accepts, so the file's content is
# what the loader judges). stackexchange_hf reads parquet only (pyarrow names an empty file).
EMPTY_CASES: dict[str, tuple[dict[str, object], tuple[str, ...]]] = {
    "anki": ({}, ("deck.txt", "deck.apkg")),
    "chatdoctor": ({}, ("chatdoctor5k.json", "HealthCareMagic-100k.json")),
    "cord19": ({}, ("metadata.csv",)),
    "mediqa": ({}, ("MEDIQA2019-Task3-QA.xml", "question_driven_answer_summarization.json")),
    "medqa": ({}, ("train.jsonl",)),
    "mmlu": ({}, ("anatomy_dev.csv",)),
    "openassistant": ({}, ("2023-04-12_oasst_ready.trees.jsonl", "2023-04-12_oasst_ready.jsonl.gz")),
    "pubmed_causal": ({}, ("pubmed_causal_language_use.csv",)),
    "pubmed_health_advice": ({}, ("annotations_discussion.csv",)),
    "stackexchange": ({}, ("health.stackexchange.com/Posts.xml", "health.stackexchange.com.7z")),
    "usmle": ({}, ("step1.json", "step1_solutions.json")),
    "wikidoc": ({"kind": "patient_information"}, ("patient_information.json", "textbook.xml")),
}
EMPTY_CONTENTS = {"0 bytes": b"", "whitespace": b" \r\n\t\r\n", "BOM and newline": b"\xef\xbb\xbf\r\n"}


def test_every_text_loader_has_an_empty_file_case() -> None:
    assert set(registry()) - set(EMPTY_CASES) == {"stackexchange_hf"}


def _write_empty(tmp_path: Path, name: str, content: bytes) -> tuple[list[Path], str]:
    """The loader's input paths and the name the error must give."""
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if name.endswith(".7z"):  # the archive is fine; its Posts.xml is empty
        inner = tmp_path / "Posts.xml"
        inner.write_bytes(content)
        with py7zr.SevenZipFile(path, "w") as z:
            z.write(inner, "Posts.xml")
        return [path], f"{path}!Posts.xml"
    if name.endswith(".gz"):
        path.write_bytes(gzip.compress(content))
        return [path], str(path)
    if name.endswith(".apkg"):
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("collection.anki2", content)
        return [path], str(path)
    path.write_bytes(content)
    if name == "step1.json":  # the questions file is the empty one; its solutions are fine
        (tmp_path / "step1_solutions.json").write_text('{"1": "A"}')
    if name == "step1_solutions.json":
        (tmp_path / "step1.json").write_text('[{"no": 1, "question": "q", "options": {"A": "a"}}]')
        return [tmp_path / "step1.json", path], str(path)
    return [path], str(path)


@pytest.mark.parametrize("kind", sorted(EMPTY_CONTENTS))
@pytest.mark.parametrize(
    ("loader", "name"), [(loader, name) for loader, (_, names) in EMPTY_CASES.items() for name in names]
)
def test_an_empty_input_file_is_an_error_naming_it(tmp_path: Path, loader: str, name: str, kind: str) -> None:
    spec = get(loader)
    options, _ = EMPTY_CASES[loader]
    paths, label = _write_empty(tmp_path, name, EMPTY_CONTENTS[kind])
    with pytest.raises(InputError, match="empty") as err:
        list(spec.load(paths, spec.options(**options)))
    assert err.value.path == label


def test_empty_file_message_says_what_was_expected(tmp_path: Path) -> None:
    path = tmp_path / "metadata.csv"
    path.write_bytes(b"")
    with pytest.raises(InputError) as err:
        list(iter_csv(path, required=("cord_uid",)))
    assert str(err.value) == f"{path}: empty file (0 bytes): expected a CSV header line"
    path.write_bytes(b"\xef\xbb\xbf\n\n")
    with pytest.raises(InputError, match=r"empty file \(5 bytes, only whitespace\)"):
        list(iter_csv(path))
    gz = tmp_path / "trees.jsonl.gz"
    gz.write_bytes(gzip.compress(b"\n"))
    with pytest.raises(InputError, match=r"empty file \(1 bytes, only whitespace, once decompressed\)"):
        list(iter_jsonl(gz))


def test_open_input_rewinds_and_names_a_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_bytes(b"  \n[1]")
    with open_input(path, expected="JSON") as f:
        assert f.read() == b"  \n[1]"
    with pytest.raises(InputError, match="cannot open") as err:
        open_input(tmp_path / "missing.json", expected="JSON", label="archive.7z!missing.json")
    assert err.value.path == "archive.7z!missing.json"


# --------------------------------------------------------------------------- JSON errors


def _json_error(tmp_path: Path, name: str, data: bytes) -> InputError:
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(InputError) as err:
        list(iter_json_records(path))
    return err.value


def test_json_array_error_reads_naturally_with_line_and_column(tmp_path: Path) -> None:
    data = b'[\r\n  {"a": 1},\r\n  {"a": 2},\r\n  {"a": tru}\r\n]'
    err = _json_error(tmp_path, "bad.json", data)
    assert err.line == 4
    assert err.message == (
        "invalid JSON at column 12, after record 1: lexical error: invalid string in json text"
    )
    assert "b'" not in str(err) and "\n" not in str(err)


def test_json_array_error_past_the_first_buffer(tmp_path: Path) -> None:
    records = b",\n".join(b'  {"text": "%d %s"}' % (i, b"x" * 50) for i in range(5000))
    err = _json_error(tmp_path, "big.json", b"[\n" + records + b',\n  {"text": "\xc3\xa9t\xc3\xa9" oops}\n]')
    # the column counts characters ("été" is 3), at the "o" where the parser stopped
    assert err.line == 5002 and err.message.startswith("invalid JSON at column 18, after record 4999: ")


def test_json_invalid_utf8_is_decoded_not_a_bytes_repr(tmp_path: Path) -> None:
    err = _json_error(tmp_path, "utf.json", b'[\n {"a": 1},\n {"a": "caf\xff"}\n]')
    assert err.line == 3 and err.message == "invalid JSON at column 12, after record 0: invalid UTF-8"


def test_json_truncated_and_first_record(tmp_path: Path) -> None:
    err = _json_error(tmp_path, "cut.json", b'[\n {"a": 1},\n {"a": "x')
    assert err.line == 3
    assert err.message == "truncated JSON: the file ends in the middle of a value, after record 0"
    err = _json_error(tmp_path, "first.json", b"\xef\xbb\xbf[\n  nope\n]")
    assert err.line == 2 and err.message.startswith("invalid JSON at column 4, before the first record: ")


def test_jsonl_error_wording(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_bytes(b'{"a": 1}\n{"a": "abc}')  # the last line, cut: no newline
    with pytest.raises(InputError) as err:
        list(iter_jsonl(path))
    assert str(err.value) == f"{path}:2: invalid JSON: unterminated string starting at column 7"
    path.write_bytes(b'{"a": 1}\n{"a" 1}\n')
    with pytest.raises(InputError) as err:
        list(iter_jsonl(path))
    assert str(err.value) == f"{path}:2: invalid JSON: expecting ':' delimiter at column 6"


# --------------------------------------------------------------------------- quirks of published files


def test_jsonl_bom_on_any_line_crlf_and_blank_lines(tmp_path: Path) -> None:
    # Files joined with `cat` keep each part's BOM; Windows tools write CRLF; a final blank line.
    path = tmp_path / "joined.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"a": 1}\r\n\r\n\xef\xbb\xbf{"a": 2}\r\n  \r\n')
    assert list(iter_jsonl(path)) == [(1, {"a": 1}), (3, {"a": 2})]
    assert [at for at, _ in iter_json_records(path)] == [f"{path}:1", f"{path}:3"]


def test_json_array_with_bom_and_crlf(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    path.write_bytes(b'\xef\xbb\xbf[\r\n  {"a": "x\\r\\ny"},\r\n  {"a": 2}\r\n]\r\n')
    assert [obj for _, obj in iter_json_records(path)] == [{"a": "x\r\ny"}, {"a": 2}]


def test_csv_with_bom_and_crlf(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_bytes(b'\xef\xbb\xbfsentence,label\r\n"two\r\nlines",1\r\nplain,0\r\n')
    assert list(iter_csv(path, required=("sentence", "label"))) == [
        (2, {"sentence": "two\r\nlines", "label": "1"}),
        (4, {"sentence": "plain", "label": "0"}),
    ]
