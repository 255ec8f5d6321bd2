"""The WikiDoc loader: medAlpaca's published JSON (real sample), Parquet, MediaWiki XML, bad input."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from meadow.errors import InputError
from meadow.records import Passage, Record
from meadow.sources import Drop, get
from meadow.sources._common import content_id
from meadow.sources.wikidoc import INSTRUCTION, WikidocOptions, load, wiki_to_text

NS = "http://www.mediawiki.org/xml/export-0.10/"


def run(*paths: Path, kind: str = "patient_information", **options) -> list:
    return list(load(list(paths), WikidocOptions(kind=kind, **options)))


def reasons(items: list) -> Counter:
    return Counter(i.reason if isinstance(i, Drop) else type(i).__name__ for i in items)


def test_registered_and_kind_required():
    spec = get("wikidoc")
    assert spec.produces == "records or passages" and spec.options is WikidocOptions
    with pytest.raises(ValueError, match="kind"):
        WikidocOptions()
    with pytest.raises(ValueError):
        WikidocOptions(kind="encyclopedia")


# ---------------------------------------------------------------- medAlpaca's published JSON (real sample)


def test_real_medalpaca_patient_information_json(raw_fixtures):
    path = raw_fixtures / "wikidoc" / "medical_meadow_small.first200.json"
    rows = json.loads(path.read_text(encoding="utf-8"))
    items = run(path)
    assert len(rows) == 200
    assert len(items) == len(rows)
    assert all(isinstance(i, Record) for i in items)
    assert [(r.instruction, r.input, r.output) for r in items] == [
        (row["instruction"], row["input"], row["output"]) for row in rows
    ]
    first = items[0]
    assert first.instruction == "Answer this question truthfully" == INSTRUCTION
    assert first.input == "What are the symptoms of Allergy?"
    assert first.output.startswith("Allergy symptoms vary, but may include:\nBreathing problems")
    assert first.source == "wikidoc/patient_information"
    assert first.id == content_id(
        "wikidoc/patient_information", rows[0]["instruction"], rows[0]["input"], rows[0]["output"]
    )
    assert first.meta == {"file": "medical_meadow_small.first200.json"}
    assert len({r.id for r in items}) == len({(row["input"], row["output"]) for row in rows})


def test_json_kind_textbook_sets_the_source(raw_fixtures):
    items = run(raw_fixtures / "wikidoc" / "medical_meadow_small.first200.json", kind="textbook")
    assert {i.source for i in items} == {"wikidoc/textbook"}


def write_json(path: Path, rows: list) -> Path:
    path.write_text(json.dumps(rows, indent=4), encoding="utf-8")
    return path


def test_json_bad_rows_become_counted_drops(tmp_path):
    good = {
        "instruction": INSTRUCTION,
        "input": "What causes gout?",
        "output": "Uric acid crystals in joints.",
    }
    path = write_json(
        tmp_path / "rows.json",
        [
            good,
            {**good, "output": 42},
            {"instruction": INSTRUCTION, "input": "What is gout?"},
            {**good, "output": ""},
            {**good, "instruction": "   "},
            ["not", "an", "object"],
            {**good, "output": "z" * 10_000_000},
        ],
    )
    items = run(path)
    assert isinstance(items[0], Record) and items[0].output == "Uric acid crystals in joints."
    assert [(i.reason, i.malformed) for i in items[1:]] == [
        ("invalid_record", True),
        ("missing_field", True),
        ("empty_output", False),
        ("empty_instruction", False),
        ("not_an_object", True),
        ("too_long_output", False),
    ]
    assert items[2].where == f"{path} (record 2)" and "output" in items[2].detail


def test_json_lines_are_read_too(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text(
        json.dumps({"instruction": INSTRUCTION, "input": "Q?", "output": "A."})
        + "\n"
        + json.dumps({"instruction": INSTRUCTION, "input": "Q2?"})
        + "\n",
        encoding="utf-8",
    )
    items = run(path)
    assert items[0].output == "A." and items[1].where == f"{path}:2"


def test_json_truncated(tmp_path):
    path = tmp_path / "cut.json"
    text = json.dumps([{"instruction": INSTRUCTION, "input": "Q?", "output": "A."}] * 3, indent=4)
    path.write_text(text[: len(text) // 2], encoding="utf-8")
    with pytest.raises(InputError, match="truncated") as err:
        run(path)
    assert str(path) in str(err.value)


def test_json_invalid_utf8(tmp_path):
    path = tmp_path / "bad.json"
    path.write_bytes(b'[{"instruction": "x", "input": "caf\xe9", "output": "y"}]')
    with pytest.raises(InputError) as err:
        run(path)
    assert str(path) in str(err.value)


def test_unrecognised_and_empty_files(tmp_path):
    (tmp_path / "x.txt").write_text("Question\tAnswer\n")
    with pytest.raises(InputError, match="unrecognised format"):
        run(tmp_path / "x.txt")
    (tmp_path / "empty.json").write_text("")
    with pytest.raises(InputError, match="empty file"):
        run(tmp_path / "empty.json")


# ---------------------------------------------------------------- Parquet


def test_parquet(tmp_path):
    path = tmp_path / "train.parquet"
    pq.write_table(
        pa.table(
            {
                "input": ["What is gout?", "What is lupus?"],
                "output": ["Arthritis.", ""],
                "instruction": [INSTRUCTION, INSTRUCTION],
            }
        ),
        path,
    )
    items = run(path, kind="textbook")
    assert items[0] == Record(
        instruction=INSTRUCTION,
        input="What is gout?",
        output="Arthritis.",
        source="wikidoc/textbook",
        id=content_id("wikidoc/textbook", INSTRUCTION, "What is gout?", "Arthritis."),
        meta={"file": "train.parquet"},
    )
    assert items[1].reason == "empty_output" and items[1].where == f"{path} (record 1)"


def test_parquet_wrong_types_missing_columns_truncated(tmp_path):
    wrong = tmp_path / "wrong.parquet"
    pq.write_table(pa.table({"instruction": [INSTRUCTION], "input": ["Q?"], "output": [3]}), wrong)
    (item,) = run(wrong)
    assert item.reason == "invalid_record" and item.malformed

    missing = tmp_path / "missing.parquet"
    pq.write_table(pa.table({"question": ["Q?"], "answer": ["A."]}), missing)
    with pytest.raises(InputError, match="missing column"):
        run(missing)

    cut = tmp_path / "cut.parquet"
    cut.write_bytes(wrong.read_bytes()[:40])
    with pytest.raises(InputError, match="Parquet") as err:
        run(cut)
    assert str(cut) in str(err.value)


# ---------------------------------------------------------------- MediaWiki XML


def page(page_id: int, title: str, text: str, ns: int = 0, extra: str = "") -> str:
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return (
        f"  <page>\n    <title>{title}</title>\n    <ns>{ns}</ns>\n    <id>{page_id}</id>\n{extra}"
        f"    <revision>\n      <id>{page_id + 1000}</id>\n"
        f'      <text xml:space="preserve">{escaped}</text>\n    </revision>\n  </page>\n'
    )


def export(path: Path, *pages: str) -> Path:
    path.write_text(
        f'<mediawiki xmlns="{NS}" version="0.10" xml:lang="en">\n'
        "  <siteinfo><sitename>wikidoc</sitename></siteinfo>\n" + "".join(pages) + "</mediawiki>\n",
        encoding="utf-8",
    )
    return path


GOUT = """{{Gout}}
'''For the WikiDoc page for this topic, click [[Gout|here]]'''
==What is gout?==
Gout is a type of [[arthritis]] caused by '''uric acid''' crystals.<ref>Example 2010</ref>
==What are the symptoms of gout?==
* Sudden, severe joint pain, often in the big toe
* Red, warm, swollen joint
===At night===
Attacks often start at night.{{cn}}
==Diagnosis==
Joint fluid is examined for crystals.
==Sources==
{{reflist}}
"""


def test_xml_patient_information(tmp_path):
    path = export(
        tmp_path / "pi.xml",
        page(7, "Gout (patient information)", GOUT),
        page(8, "Podagra (patient information)", "#REDIRECT [[Gout (patient information)]]"),
        page(9, "Talk:Gout (patient information)", "==Why?==\nBecause.", ns=1),
        page(10, "Empty (patient information)", ""),
    )
    items = run(path)
    assert [i.reason if isinstance(i, Drop) else i.input for i in items] == [
        "no_heading",
        "What is gout?",
        "What are the symptoms of gout?",
        "heading_not_question",
        "non_content_section",
        "redirect",
        "not_article",
        "empty_page",
    ]
    what, symptoms = items[1], items[2]
    assert what == Record(
        instruction=INSTRUCTION,
        input="What is gout?",
        output="Gout is a type of arthritis caused by uric acid crystals.",
        source="wikidoc/patient_information",
        id="wikidoc/patient_information:7#What_is_gout?",
        meta={
            "title": "Gout (patient information)",
            "page_id": "7",
            "revision_id": "1007",
            "section": "What is gout?",
            "file": "pi.xml",
            "url": "https://www.wikidoc.org/index.php/Gout_(patient_information)#What_is_gout?",
        },
    )
    assert symptoms.output == (
        "- Sudden, severe joint pain, often in the big toe\n- Red, warm, swollen joint\n\n"
        "At night\nAttacks often start at night."
    )
    assert (
        items[3].detail == "Diagnosis"
        and items[3].where == f"{path}:3 (record page 7 'Gout (patient information)' #Diagnosis)"
    )


def test_xml_textbook(tmp_path):
    text = (
        "{{CMG}}\n==Overview==\n"
        + "Gout is an inflammatory arthritis. " * 4
        + "\n==Diagnosis==\n===Joint fluid===\nNeedle-shaped, negatively birefringent crystals are seen "
        "under polarized light in the synovial fluid aspirated from the joint.\n"
        "===Joint fluid===\nToo short.\n"
        "==See also==\n* [[Pseudogout]]\n"
    )
    path = export(tmp_path / "tb.xml", page(3, "Gout", text))
    items = run(path, kind="textbook")
    assert [i.reason if isinstance(i, Drop) else i.id for i in items] == [
        "too_short",
        "wikidoc/textbook:3#Overview",
        "too_short",
        "wikidoc/textbook:3#Joint_fluid",
        "too_short",
        "non_content_section",
    ]
    assert items[1].text == "Gout - Overview\n\n" + ("Gout is an inflammatory arthritis. " * 4).strip()
    assert items[3] == Passage(
        text=(
            "Gout - Diagnosis - Joint fluid\n\nNeedle-shaped, negatively birefringent crystals are seen "
            "under polarized light in the synovial fluid aspirated from the joint."
        ),
        source="wikidoc/textbook",
        id="wikidoc/textbook:3#Joint_fluid",
        task="wikidoc_textbook",
        meta={
            "title": "Gout",
            "page_id": "3",
            "revision_id": "1003",
            "section": "Joint fluid",
            "file": "tb.xml",
            "url": "https://www.wikidoc.org/index.php/Gout#Joint_fluid",
            "heading_path": ["Diagnosis", "Joint fluid"],
        },
    )
    assert "Joint_fluid_2" in items[4].where  # a repeated heading gets MediaWiki's _2 anchor
    assert run(path, kind="textbook", min_chars=0)[4].id == "wikidoc/textbook:3#Joint_fluid_2"


def test_wiki_to_text_markup():
    wikitext = (
        "'''Bold''' and ''italic'' [[Target|label]] [[Plain link]] [[File:x.png|thumb|caption]] "
        "[[Category:Y]] {{Template|a={{nested}}}} x<ref name=r>ref</ref><ref name=r/> "
        "[http://example.org site] &amp; &nbsp;<!-- comment -->end<br>next\n"
        '{| class="wikitable"\n|-\n| cell || cell\n|}\n# one\n# two\n: indented\n__NOTOC__'
    )
    assert wiki_to_text(wikitext) == (
        "Bold and italic label Plain link x site & end\nnext\n- one\n- two\nindented"
    )


def test_xml_malformed_pages_and_huge_section(tmp_path):
    no_id = (
        "  <page>\n    <title>No id</title>\n    <ns>0</ns>\n"
        "    <revision><text>==Q?==\nA.</text></revision>\n  </page>\n"
    )
    path = export(
        tmp_path / "x.xml", no_id, page(5, "Big (patient information)", "==Why?==\n" + "w" * 10_000_000)
    )
    items = run(path)
    assert (items[0].reason, items[0].malformed) == ("invalid_page", True)
    assert items[1].reason == "too_long_output"


def test_xml_truncated_names_the_line(tmp_path):
    full = export(tmp_path / "full.xml", page(7, "Gout (patient information)", GOUT)).read_text()
    path = tmp_path / "cut.xml"
    path.write_text(full[: full.index("==Diagnosis==")], encoding="utf-8")
    with pytest.raises(InputError, match="truncated") as err:
        run(path)
    assert err.value.path == str(path) and err.value.line is not None and err.value.line > 5


def test_xml_invalid_utf8_names_the_line(tmp_path):
    path = tmp_path / "bad.xml"
    data = export(tmp_path / "ok.xml", page(7, "Gout (patient information)", GOUT)).read_bytes()
    path.write_bytes(data.replace(b"Sudden", b"Sudd\xff\xfen"))
    with pytest.raises(InputError) as err:
        run(path)
    assert err.value.line == data[: data.index(b"Sudden")].count(b"\n") + 1


def test_xml_not_a_mediawiki_export(tmp_path):
    path = tmp_path / "other.xml"
    path.write_text("<posts>\n  <row Id='1'/>\n</posts>\n")
    with pytest.raises(InputError, match="MediaWiki export"):
        run(path)


# ---------------------------------------------------------------- the project's examples


def test_example_patient_information(examples_dir):
    items = run(examples_dir / "wikidoc" / "patient_information.xml")
    assert reasons(items) == Counter(
        {
            "Record": 9,
            "heading_not_question": 3,
            "no_heading": 2,
            "non_content_section": 2,
            "empty_output": 1,
            "redirect": 1,
            "not_article": 1,
        }
    )
    records = {r.input: r for r in items if isinstance(r, Record)}
    assert records["What causes iron deficiency anemia?"].output.endswith(
        "Causes in older adults\nIn men and in women after menopause, "
        "slow bleeding from the stomach or bowel is the most common cause and should always be looked for."
    )
    assert len({r.id for r in records.values()}) == 9


def test_example_textbook(examples_dir):
    items = run(examples_dir / "wikidoc" / "textbook.xml", kind="textbook")
    assert reasons(items) == Counter(
        {"Passage": 6, "too_short": 3, "non_content_section": 2, "redirect": 1, "empty_page": 1}
    )
    passages = {p.id: p for p in items if isinstance(p, Passage)}
    lab = passages["wikidoc/textbook:900201#Laboratory_Findings"]
    assert lab.text.startswith("Hyperkalemia - Diagnosis - Laboratory Findings\n\nPseudohyperkalemia")
    assert "wikitable" not in lab.text and "||" not in lab.text
