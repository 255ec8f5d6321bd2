"""cord19 loader: CORD-19 metadata.csv -> abstract-to-title records."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import pytest

from meadow.errors import InputError
from meadow.records import Record
from meadow.sources import Drop, get
from meadow.sources.cord19 import INSTRUCTION, Cord19Options

HEADER = (
    "cord_uid,sha,source_x,title,doi,pmcid,pubmed_id,license,abstract,publish_time,authors,journal,"
    "mag_id,who_covidence_id,arxiv_id,pdf_json_files,pmc_json_files,url,s2_id"
)
COLUMNS = HEADER.split(",")


def run(*paths: Path, **options) -> list:
    spec = get("cord19")
    return list(spec.load(list(paths), Cord19Options(**options)))


def records(items: list) -> list[Record]:
    return [it for it in items if isinstance(it, Record)]


def drops(items: list) -> Counter:
    return Counter(it.reason for it in items if isinstance(it, Drop))


def write_rows(path: Path, rows: list[dict[str, str]], header: list[str] = COLUMNS) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=header, lineterminator="\n", restval="")
        writer.writeheader()
        writer.writerows(rows)
    return path


def row(uid: str, title: str = "A title", abstract: str = "An abstract.", **more: str) -> dict[str, str]:
    return {"cord_uid": uid, "title": title, "abstract": abstract, **more}


def test_registered():
    spec = get("cord19")
    assert spec.produces == "records"
    assert Cord19Options().instruction == "Please summerize the given abstract to a title"


def test_real_metadata_first150(raw_fixtures: Path):
    path = raw_fixtures / "cord19" / "metadata.first150.csv"
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    usable = [r for r in rows if r["abstract"].strip() and r["title"].strip()]
    no_abstract = [r for r in rows if not r["abstract"].strip()]
    assert len(rows) == 150 and len(usable) == 142  # the numbers this slice really has

    items = run(path)
    recs = records(items)
    assert len(items) == len(rows)  # one item per row, nothing skipped silently
    assert len(recs) == len(usable)
    assert drops(items) == Counter({"no_abstract": len(no_abstract)})
    assert [r.id for r in recs] == [f"cord19:{r['cord_uid']}" for r in usable]
    assert [r.input for r in recs] == [r["abstract"].strip() for r in usable]
    assert [r.output for r in recs] == [r["title"].strip() for r in usable]
    assert all(r.instruction == INSTRUCTION and r.source == "cord19" for r in recs)
    assert Counter(r.meta["license"] for r in recs) == Counter(r["license"] for r in usable)

    first = recs[0]
    assert first.id == "cord19:ug7v899j"
    assert first.output == (
        "Clinical features of culture-proven Mycoplasma pneumoniae infections at "
        "King Abdulaziz University Hospital, Jeddah, Saudi Arabia"
    )
    assert first.input.startswith("OBJECTIVE: This retrospective chart review describes the epidemiology")
    assert first.input.endswith("mortality rate of pneumonia in patients with comorbidities was high.")
    assert first.meta == {
        "cord_uid": "ug7v899j",
        "doi": "10.1186/1471-2334-1-6",
        "pubmed_id": "11472636",
        "license": "no-cc",
        "publish_time": "2001-07-04",
        "source_x": "PMC",
    }
    missing = next(it for it in items if isinstance(it, Drop))
    line = 2 + rows.index(no_abstract[0])  # header is line 1, no multi-line fields in this slice
    assert missing.where == f"{path}:{line}"
    assert no_abstract[0]["cord_uid"] in missing.detail


def test_real_hf_dummy_no_trailing_newline_and_repeats_across_files(raw_fixtures: Path):
    dummy = raw_fixtures / "cord19" / "metadata.hf_dummy_2020-11-29.first4.csv"
    assert not dummy.read_bytes().endswith(b"\n")
    recs = records(run(dummy))
    assert [r.id for r in recs] == [
        "cord19:ug7v899j",
        "cord19:02tnwd4m",
        "cord19:ejv2xln0",
        "cord19:2b73a28n",
    ]
    assert recs[-1].input.endswith("its role in lung disease.")  # the unterminated last line is read whole

    # The dummy is the head of the same release: loaded after the 150-row slice, its rows repeat.
    items = run(raw_fixtures / "cord19" / "metadata.first150.csv", dummy)
    assert drops(items)["duplicate_cord_uid"] == 4
    assert len({r.id for r in records(items)}) == len(records(items))


def test_instruction_option(tmp_path: Path):
    path = write_rows(tmp_path / "metadata.csv", [row("u1")])
    (rec,) = run(path, instruction="Write a title for this abstract.")
    assert rec.instruction == "Write a title for this abstract."
    with pytest.raises(ValueError):
        Cord19Options(instructions="typo")


def test_minimal_columns_and_crlf(tmp_path: Path):
    path = tmp_path / "metadata.csv"
    path.write_bytes(b'abstract,title,cord_uid\r\n"Multi\r\nline abstract.",T1,u1\r\n')
    (rec,) = run(path)
    assert rec.input == "Multi\r\nline abstract."
    assert rec.output == "T1"
    assert rec.meta == {
        "cord_uid": "u1",
        "doi": None,
        "pubmed_id": None,
        "license": None,
        "publish_time": None,
        "source_x": None,
    }


def test_empty_and_duplicate_rows(tmp_path: Path):
    path = write_rows(
        tmp_path / "metadata.csv",
        [
            row("a", abstract=""),  # no abstract: does not claim the uid
            row("a", abstract="Second version with an abstract."),
            row("a", abstract="Third copy."),
            row("b", title="  "),
            row("c", abstract=" \n "),
            row("", abstract="No uid."),
            row("d", abstract="Has a NUL \x00 byte."),
        ],
    )
    items = run(path)
    assert [it.reason if isinstance(it, Drop) else it.id for it in items] == [
        "no_abstract",
        "cord19:a",
        "duplicate_cord_uid",
        "no_title",
        "no_abstract",
        "no_cord_uid",
        "invalid_record",
    ]
    assert items[1].input == "Second version with an abstract."
    assert items[2].where == f"{path}:4"
    assert items[5].malformed and items[6].malformed


def test_ten_megabyte_abstract_is_dropped_as_too_long(tmp_path: Path):
    path = write_rows(tmp_path / "metadata.csv", [row("big", abstract="x" * 10_000_000), row("ok")])
    items = run(path)
    assert isinstance(items[0], Drop) and items[0].reason == "too_long_input"
    assert items[0].where == f"{path}:2"
    assert isinstance(items[1], Record) and items[1].id == "cord19:ok"


def test_missing_column(tmp_path: Path):
    path = tmp_path / "metadata.csv"
    path.write_text("cord_uid,title,authors\nu1,T,A\n", encoding="utf-8")
    with pytest.raises(InputError) as err:
        run(path)
    assert err.value.line == 1 and "abstract" in err.value.message and str(path) in str(err.value)


def test_truncated_mid_quoted_field(tmp_path: Path, raw_fixtures: Path):
    data = (raw_fixtures / "cord19" / "metadata.first150.csv").read_bytes()
    lines = data.split(b"\n")
    cut = (
        b"\n".join(lines[:3]) + b"\n" + lines[3][: lines[3].index(b"Surfactant") + 40]
    )  # inside the abstract
    path = tmp_path / "metadata.csv"
    path.write_bytes(cut)
    items = []
    with pytest.raises(InputError) as err:
        for it in get("cord19").load([path], Cord19Options()):
            items.append(it)
    assert len(items) == 2  # the complete rows before the cut were read
    assert err.value.line == 4 and str(path) in str(err.value)


def test_wrong_number_of_fields(tmp_path: Path):
    path = tmp_path / "metadata.csv"
    path.write_text(HEADER + "\n" + "u1,,PMC,T,,,,cc-by,An abstract.\n", encoding="utf-8")
    with pytest.raises(InputError) as err:
        run(path)
    assert err.value.line == 2 and "19" in err.value.message


def test_invalid_utf8(tmp_path: Path):
    path = write_rows(tmp_path / "metadata.csv", [row("u1"), row("u2"), row("u3")])
    data = path.read_bytes().replace(b"u3,", b"u3\xff,")
    path.write_bytes(data)
    with pytest.raises(InputError) as err:
        run(path)
    assert err.value.line == 4 and "UTF-8" in err.value.message


def test_example_file_loads(examples_dir: Path):
    items = run(examples_dir / "cord19" / "metadata.csv")
    with open(examples_dir / "cord19" / "metadata.csv", newline="", encoding="utf-8") as f:
        header = next(csv.reader(f))
    assert header == COLUMNS
    # the paper indexed twice under two cord_uids is two records here: the build's exact dedup
    # (not the loader) finds the copy
    assert len(records(items)) == 10
    assert drops(items) == Counter({"no_abstract": 2, "no_title": 1, "duplicate_cord_uid": 1})


def _span_items(paths: list[Path], span) -> list:
    return list(get("cord19").load(paths, Cord19Options(), span=span))


def _key(item) -> tuple:
    return ("drop", item.reason, item.where, item.detail) if isinstance(item, Drop) else ("rec", item)


def test_spans_together_yield_exactly_the_whole_read(tmp_path: Path, raw_fixtures: Path):
    # meadow build --workers reads one large metadata.csv in spans (meadow.build.shards): every
    # row once, in order, and a cord_uid claimed before a span is a duplicate inside it.
    tricky = write_rows(
        tmp_path / "metadata.csv",
        [
            row("a", abstract=""),
            row("a", abstract="Line one\nline two of a quoted abstract.\n"),  # lines 3-5
            row("b", abstract="Has a NUL \x00 byte."),  # invalid: does not claim b
            row("a", abstract="A repeat."),
            row("b", abstract="Now valid."),
            row("c", title=""),
            row("a", abstract="Another\nrepeat\nspanning lines."),
            row("c"),
            row("", abstract="No uid."),
        ],
    )
    paths = [raw_fixtures / "cord19" / "metadata.first150.csv", tricky]
    paths.append(raw_fixtures / "cord19" / "metadata.hf_dummy_2020-11-29.first4.csv")
    whole = [_key(it) for it in run(*paths)]
    assert Counter(k[1] for k in whole if k[0] == "drop")["duplicate_cord_uid"] == 4 + 2
    lines = [sum(1 for _ in open(p, "rb")) + 1 for p in paths]
    cuts = sorted({(f, line) for f in range(3) for line in range(lines[f] + 1) if line % 7 == 3 or f == 1})
    for cut in cuts:
        for end in ((cut[0], cut[1] + 5), (cut[0] + 1, 4), (3, 0)):
            parts = [((0, 0), cut), (cut, max(cut, end)), (max(cut, end), (3, 0))]
            got = [_key(it) for span in parts for it in _span_items(paths, span)]
            assert got == whole, (cut, end)
    assert _span_items(paths, ((1, 0), (1, 0))) == []
