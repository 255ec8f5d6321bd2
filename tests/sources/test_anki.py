"""The Anki loader on real .apkg packages built with genanki, text exports and bad input."""

from __future__ import annotations

import importlib.util
import json
import sqlite3
import zipfile
from pathlib import Path

import genanki
import pytest

from meadow.errors import InputError
from meadow.records import Passage
from meadow.sources import Drop, anki, get
from meadow.sources._common import content_id
from meadow.sources.anki import AnkiOptions, load

DECK_ID = 2_059_400_110


def run(*paths: Path, **options) -> list:
    return list(load(list(paths), AnkiOptions(**options)))


def write_apkg(path: Path, notes: list[genanki.Note], deck_name: str = "Medicine::Cardiology") -> Path:
    deck = genanki.Deck(DECK_ID, deck_name)
    for note in notes:
        deck.add_note(note)
    genanki.Package(deck).write_to_file(str(path), timestamp=1_700_000_000)
    return path


def basic(front: str, back: str, guid: str, tags: tuple[str, ...] = ()) -> genanki.Note:
    return genanki.Note(model=genanki.BASIC_MODEL, fields=[front, back], guid=guid, tags=list(tags))


def cloze(text: str, extra: str, guid: str) -> genanki.Note:
    return genanki.Note(model=genanki.CLOZE_MODEL, fields=[text, extra], guid=guid)


def zip_with(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def test_registered():
    spec = get("anki")
    assert spec.produces == "passages" and spec.options is AnkiOptions
    assert "han2023medalpaca" in spec.citation


def test_apkg_basic_cloze_image_html_sound(tmp_path):
    path = write_apkg(
        tmp_path / "Cardio Deck.apkg",
        [
            basic(
                "What is the normal resting heart rate in adults?",
                "60-100 beats per minute",
                "g-basic",
                ("cardiology", "physiology"),
            ),
            cloze(
                "The {{c1::sinoatrial node::structure}} sets the rate; "
                "the {{c2::AV node}} delays conduction.",
                "Both are in the right atrium.",
                "g-cloze",
            ),
            basic('Identify: <img src="ecg.png">', "Atrial fibrillation", "g-image"),
            basic(
                "<b>Beck's triad</b>&nbsp;signs?",
                "<ul><li>Hypotension</li><li>JVD</li><li>Muffled heart sounds</li></ul>[sound:beck.mp3]",
                "g-html",
            ),
        ],
    )
    items = run(path)
    assert [type(i) for i in items] == [Passage, Passage, Drop, Passage]

    first = items[0]
    assert (
        first.text == "Front: What is the normal resting heart rate in adults?\nBack: 60-100 beats per minute"
    )
    assert first.source == "anki/cardio_deck"
    assert first.id == "anki/cardio_deck:g-basic"
    assert first.task == "flashcard"
    assert first.meta["tags"] == ["cardiology", "physiology"]
    assert first.meta["deck"] == "cardio_deck"
    assert first.meta["anki_deck"] == "Medicine::Cardiology"
    assert first.meta["note_type"] == "Basic (genanki)"
    assert first.meta["file"] == "Cardio Deck.apkg"
    assert isinstance(first.meta["note_id"], int)

    assert items[1].text == (
        "Front: The [...] sets the rate; the [...] delays conduction.\n"
        "Back: The sinoatrial node sets the rate; the AV node delays conduction.\n"
        "Both are in the right atrium."
    )
    assert items[1].id == "anki/cardio_deck:g-cloze"
    assert items[2].reason == "has_image" and not items[2].malformed
    assert "Cardio Deck.apkg" in items[2].where and "note" in items[2].where
    assert items[3].text == "Front: Beck's triad signs?\nBack: - Hypotension\n- JVD\n- Muffled heart sounds"
    json.dumps([i.meta for i in items if isinstance(i, Passage)])  # meta is JSON-serialisable


def test_keep_images_and_deck_option(tmp_path):
    path = write_apkg(
        tmp_path / "d.apkg", [basic('Identify: <img src="ecg.png"> rhythm', "Atrial flutter", "g1")]
    )
    (item,) = run(path, drop_images=False, deck="My Deck")
    assert item.text == "Front: Identify: rhythm\nBack: Atrial flutter"
    assert item.source == "anki/My Deck" and item.id == "anki/My Deck:g1"


def test_named_fields_win_over_position(tmp_path):
    model = genanki.Model(
        1_607_392_319,
        "Reversed",
        fields=[{"name": "Back"}, {"name": "Extra"}, {"name": "Front"}],
        templates=[{"name": "Card 1", "qfmt": "{{Front}}", "afmt": "{{Back}}"}],
    )
    path = write_apkg(
        tmp_path / "d.apkg", [genanki.Note(model=model, fields=["Answer", "More", "Question"], guid="x")]
    )
    (item,) = run(path)
    assert item.text == "Front: Question\nBack: Answer\nMore"


def test_empty_fields_and_huge_field(tmp_path):
    path = write_apkg(
        tmp_path / "d.apkg",
        [
            basic("Question without answer", "", "g-empty-back"),
            basic("   ", "Answer", "g-empty-front"),
            basic("Huge", "x" * 10_000_000, "g-huge"),
        ],
    )
    items = run(path)
    assert [(i.reason, i.detail) for i in items[:2]] == [
        ("empty_text", "the back is empty"),
        ("empty_text", "the front is empty"),
    ]
    assert items[2].reason == "too_long_text" and not items[2].malformed


def test_example_deck(examples_dir):
    path = examples_dir / "anki" / "medical_deck.apkg"
    items = run(path)
    passages = [i for i in items if isinstance(i, Passage)]
    drops = sorted(i.reason for i in items if isinstance(i, Drop))
    assert len(items) == 11 and len(passages) == 9
    assert drops == ["empty_text", "has_image"]
    by_id = {p.id: p for p in passages}
    assert by_id["anki/medical_deck:mdx-0010"].text == (
        "Front: Reference range of serum sodium in adults?\nBack: 135\u2013145 mmol/L"
    )


def test_example_deck_script_is_reproducible(examples_dir, tmp_path):
    spec = importlib.util.spec_from_file_location("make_deck", examples_dir / "anki" / "make_deck.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rebuilt = module.build(tmp_path / "medical_deck.apkg")

    def strip_where(items: list) -> list:
        return [(i.reason, i.detail) if isinstance(i, Drop) else i for i in items]

    assert strip_where(run(rebuilt)) == strip_where(run(examples_dir / "anki" / "medical_deck.apkg"))


def test_example_text_export(examples_dir):
    items = run(examples_dir / "anki" / "medical_notes.txt")
    assert [type(i).__name__ for i in items] == ["Passage", "Passage", "Passage", "Drop", "Drop"]
    assert (
        items[2].text == "Front: Classic triad of nephritic syndrome?\n"
        'Back: Hematuria\nHypertension\nOliguria with "smoky" urine'
    )
    assert [(i.reason, i.where.rsplit(":", 1)[1]) for i in items[3:]] == [
        ("has_image", "11"),
        ("empty_text", "12"),
    ]


# ---------------------------------------------------------------- newer package formats


def _new_schema_collection(path: Path) -> bytes:
    """A collection in the newer schema (notetypes/fields/decks tables), as in collection.anki21b."""
    con = sqlite3.connect(path)
    con.executescript("""
        CREATE TABLE col (id integer primary key, crt, mod, scm, ver, dty, usn, ls, conf,
                          models, decks, dconf, tags);
        INSERT INTO col VALUES (1, 0, 0, 0, 18, 0, 0, 0, '', '', '', '', '');
        CREATE TABLE notes (id integer primary key, guid text, mid integer, mod integer, usn integer,
                            tags text, flds text, sfld integer, csum integer, flags integer, data text);
        CREATE TABLE cards (id integer primary key, nid integer, did integer, ord integer);
        CREATE TABLE notetypes (id integer primary key, name text, mtime_secs integer, usn integer,
                                config blob);
        CREATE TABLE fields (ntid integer, ord integer, name text, config blob);
        CREATE TABLE decks (id integer primary key, name text);
    """)
    con.execute("INSERT INTO notetypes VALUES (10, 'Basic', 0, 0, ?)", (b"\x10\x00\x1a\x00",))
    con.execute("INSERT INTO notetypes VALUES (11, 'Cloze', 0, 0, ?)", (b"\x08\x01\x1a\x00",))
    con.executemany(
        "INSERT INTO fields VALUES (?, ?, ?, x'')",
        [(10, 0, "Front"), (10, 1, "Back"), (11, 0, "Text"), (11, 1, "Back Extra")],
    )
    con.execute("INSERT INTO decks VALUES (5, ?)", ("Medicine\x1fRenal",))
    con.execute(
        "INSERT INTO notes VALUES (1, 'n-1', 10, 0, 0, ' renal ', 'Normal GFR?\x1f>90 mL/min', 0, 0, 0, '')"
    )
    con.execute(
        "INSERT INTO notes VALUES "
        "(2, 'n-2', 11, 0, 0, '', '{{c1::ADH}} acts on the collecting duct\x1f', 0, 0, 0, '')"
    )
    con.executemany("INSERT INTO cards VALUES (?, ?, 5, 0)", [(100, 1), (101, 2)])
    con.commit()
    con.close()
    return path.read_bytes()


def _legacy_placeholder(tmp_path: Path) -> bytes:
    placeholder = write_apkg(
        tmp_path / "placeholder.apkg", [basic("Please update to the latest Anki version.", "x", "p")]
    )
    with zipfile.ZipFile(placeholder) as zf:
        return zf.read("collection.anki2")


def test_anki21b_zstd_package(tmp_path):
    zstd = anki._zstd_module()
    if zstd is None:
        pytest.skip("no zstd module (backports.zstd) installed")
    db = _new_schema_collection(tmp_path / "c.sqlite")
    path = zip_with(
        tmp_path / "new.apkg",
        {"collection.anki2": _legacy_placeholder(tmp_path), "collection.anki21b": zstd.compress(db)},
    )
    items = run(path)
    assert [i.text for i in items] == [
        "Front: Normal GFR?\nBack: >90 mL/min",
        "Front: [...] acts on the collecting duct\nBack: ADH acts on the collecting duct",
    ]
    assert items[0].meta["anki_deck"] == "Medicine::Renal" and items[0].meta["tags"] == ["renal"]
    assert items[1].meta["note_type"] == "Cloze"


def test_anki21b_corrupt_zstd(tmp_path):
    if anki._zstd_module() is None:
        pytest.skip("no zstd module (backports.zstd) installed")
    path = zip_with(tmp_path / "new.apkg", {"collection.anki21b": b"\x28\xb5\x2f\xfd not zstd data"})
    with pytest.raises(InputError, match="cannot extract collection.anki21b") as err:
        run(path)
    assert str(path) in str(err.value)


def test_anki21b_without_zstd_names_the_fix(tmp_path, monkeypatch):
    monkeypatch.setattr(anki, "_zstd_module", lambda: None)
    path = zip_with(
        tmp_path / "new.apkg",
        {"collection.anki2": _legacy_placeholder(tmp_path), "collection.anki21b": b"\x28\xb5\x2f\xfd..."},
    )
    with pytest.raises(InputError, match="Support older Anki versions") as err:
        run(path)
    assert str(path) in str(err.value)


def test_anki21_preferred_over_placeholder(tmp_path):
    real = write_apkg(tmp_path / "real.apkg", [basic("Q", "A", "real-1")])
    with zipfile.ZipFile(real) as zf:
        collection = zf.read("collection.anki2")
    path = zip_with(
        tmp_path / "legacy21.apkg",
        {"collection.anki2": _legacy_placeholder(tmp_path), "collection.anki21": collection},
    )
    assert [i.id for i in run(path)] == ["anki/legacy21:real-1"]


# ---------------------------------------------------------------- bad packages


def test_not_a_zip(tmp_path):
    path = tmp_path / "deck.apkg"
    path.write_text("Front\tBack\n")
    with pytest.raises(InputError, match="not a zip archive") as err:
        run(path)
    assert str(path) in str(err.value)


def test_zip_without_collection(tmp_path):
    path = zip_with(tmp_path / "deck.apkg", {"media": b"{}"})
    with pytest.raises(InputError, match="no Anki collection"):
        run(path)


def test_truncated_zip(tmp_path):
    good = write_apkg(tmp_path / "good.apkg", [basic("Q", "A", "g")])
    path = tmp_path / "cut.apkg"
    path.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(InputError, match="truncated or corrupt") as err:
        run(path)
    assert str(path) in str(err.value)


def test_collection_not_sqlite(tmp_path):
    path = zip_with(tmp_path / "deck.apkg", {"collection.anki2": b"this is not a database" * 100})
    with pytest.raises(InputError, match="not a readable Anki collection"):
        run(path)


def test_notes_table_with_wrong_columns(tmp_path):
    db = tmp_path / "c.sqlite"
    con = sqlite3.connect(db)
    con.executescript(
        "CREATE TABLE col (models text, decks text); INSERT INTO col VALUES ('{}', '{}');"
        "CREATE TABLE notes (id integer, front text, back text);"
        "INSERT INTO notes VALUES (1, 'Q', 'A');"
    )
    con.commit()
    con.close()
    path = zip_with(tmp_path / "deck.apkg", {"collection.anki2": db.read_bytes()})
    with pytest.raises(InputError, match="lacks the expected columns") as err:
        run(path)
    assert str(path) in str(err.value)


def test_notes_row_with_wrong_types_is_a_malformed_drop(tmp_path):
    good = write_apkg(tmp_path / "good.apkg", [basic("Q", "A", "g1"), basic("Q2", "A2", "g2")])
    db = tmp_path / "c.sqlite"
    with zipfile.ZipFile(good) as zf:
        db.write_bytes(zf.read("collection.anki2"))
    con = sqlite3.connect(db)
    con.execute("UPDATE notes SET flds = x'00ff' WHERE guid = 'g1'")
    con.commit()
    con.close()
    items = run(zip_with(tmp_path / "deck.apkg", {"collection.anki2": db.read_bytes()}))
    assert items[0].reason == "invalid_note" and items[0].malformed
    assert items[1].id == "anki/deck:g2"


# ---------------------------------------------------------------- text exports


def test_text_export_with_headers(tmp_path):
    path = tmp_path / "Notes Export.txt"
    path.write_text(
        "#separator:tab\n#html:true\n#guid column:1\n#notetype column:2\n#deck column:3\n#tags column:6\n"
        "t1\tBasic\tMed::Pharm\tAntidote for <i>heparin</i>?\tProtamine sulfate\tpharm antidotes\n"
        't2\tCloze\tMed::Pharm\t"{{c1::Vitamin K}} reverses\twarfarin"\t"Takes ""hours"" to act"\tpharm\n',
        encoding="utf-8",
    )
    items = run(path)
    assert items[0].text == "Front: Antidote for heparin?\nBack: Protamine sulfate"
    assert items[0].id == "anki/notes_export:t1"
    assert items[0].meta == {
        "deck": "notes_export",
        "anki_deck": "Med::Pharm",
        "tags": ["pharm", "antidotes"],
        "note_id": "t1",
        "note_type": "Basic",
        "file": "Notes Export.txt",
    }
    assert (
        items[1].text
        == 'Front: [...] reverses warfarin\nBack: Vitamin K reverses warfarin\nTakes "hours" to act'
    )


def test_legacy_text_export_without_headers(tmp_path):
    path = tmp_path / "old.txt"
    path.write_text(
        "Loop of Henle segment impermeable to water?\tThick ascending limb\n\n"
        "{{c1::Aldosterone}} acts on principal cells\t\n",
        encoding="utf-8",
    )
    items = run(path)
    front, back = "Loop of Henle segment impermeable to water?", "Thick ascending limb"
    assert items[0].text == f"Front: {front}\nBack: {back}"
    assert items[0].id == content_id("anki/old", front, back)
    assert items[1].text == "Front: [...] acts on principal cells\nBack: Aldosterone acts on principal cells"


def test_text_export_plain_text_is_not_parsed_as_html(tmp_path):
    path = tmp_path / "plain.txt"
    path.write_text(
        "#separator:semicolon\n#html:false\nK<3.5 mmol/L is called?;hypokalemia\n", encoding="utf-8"
    )
    assert run(path)[0].text == "Front: K<3.5 mmol/L is called?\nBack: hypokalemia"


def test_text_export_invalid_utf8_names_the_line(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_bytes(b"#separator:tab\nQ1\tA1\nQ2\t\xff\xfe broken\n")
    with pytest.raises(InputError) as err:
        run(path)
    assert err.value.line == 3 and err.value.path == str(path)


def test_text_export_bad_header(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_text("#separator:tab\n#tags column:last\nQ\tA\ttag\n", encoding="utf-8")
    with pytest.raises(InputError, match="tags column") as err:
        run(path)
    assert err.value.line == 2


def test_text_export_empty_and_huge_fields(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("Q only\t\n\tA only\nBig\t" + "y" * 10_000_000 + "\n", encoding="utf-8")
    items = run(path)
    assert [(i.reason, i.where) for i in items] == [
        ("empty_text", f"{path}:1"),
        ("empty_text", f"{path}:2"),
        ("too_long_text", f"{path}:3"),
    ]
