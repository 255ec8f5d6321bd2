"""Write examples/anki/medical_deck.apkg: a small invented medical deck for the offline demo.

Deterministic: fixed deck, model and note ids, fixed guids, a fixed timestamp and fixed zip
entry dates, so rerunning it gives the same notes. Needs genanki (a dev dependency).

    python examples/anki/make_deck.py [output.apkg]
"""

from __future__ import annotations

import sqlite3
import sys
import tempfile
import zipfile
from pathlib import Path

import genanki

TIMESTAMP = 1_700_000_000.0  # note and card ids count up from this (in ms)
ZIP_DATE = (2024, 1, 1, 0, 0, 0)

# (model, fields, guid, tags): invented cards, one of each kind the loader handles.
NOTES = [
    (
        genanki.BASIC_MODEL,
        [
            "Which drug class is first-line for hypertension in a patient with diabetes and albuminuria?",
            "An ACE inhibitor (an ARB if ACE inhibitors are not tolerated).",
        ],
        "mdx-0001",
        ["pharmacology", "cardiology"],
    ),
    (
        genanki.BASIC_MODEL,
        [
            "<b>Virchow's triad</b> consists of which three factors?",
            "<ul><li>Stasis of blood flow</li><li>Endothelial injury</li><li>Hypercoagulability</li></ul>"
            "[sound:virchow_triad.mp3]",
        ],
        "mdx-0002",
        ["hematology"],
    ),
    (
        genanki.CLOZE_MODEL,
        [
            "The {{c1::sinoatrial node}} is the normal pacemaker of the heart and fires at "
            "{{c2::60-100::rate}} beats per minute.",
            "It lies in the wall of the right atrium.",
        ],
        "mdx-0003",
        ["cardiology", "physiology"],
    ),
    (
        genanki.BASIC_MODEL,
        ["Which electrolyte disturbance causes peaked T waves on the ECG?", "Hyperkalemia"],
        "mdx-0004",
        ["cardiology", "nephrology"],
    ),
    (
        genanki.BASIC_MODEL,
        [
            'Name the structure marked by the arrow on this chest radiograph: <img src="cxr_arrow.png">',
            "The aortic knob",
        ],
        "mdx-0005",
        ["radiology"],
    ),
    (
        genanki.BASIC_MODEL,
        ["What is the antidote for acetaminophen (paracetamol) overdose?", "N-acetylcysteine"],
        "mdx-0006",
        ["pharmacology", "toxicology"],
    ),
    (
        genanki.CLOZE_MODEL,
        [
            "{{c1::Metformin}} is avoided in severe renal impairment because of the risk of "
            "{{c2::lactic acidosis}}.",
            "",
        ],
        "mdx-0007",
        ["pharmacology", "endocrinology"],
    ),
    (
        genanki.BASIC_MODEL,
        [
            "Most common bacterial cause of community-acquired pneumonia in adults?",
            "<i>Streptococcus pneumoniae</i>",
        ],
        "mdx-0008",
        ["infectious_disease"],
    ),
    (
        genanki.BASIC_MODEL,
        ["Name the four chambers of the heart.", ""],  # no back: dropped as empty_text
        "mdx-0009",
        ["anatomy"],
    ),
    (
        genanki.BASIC_MODEL,
        ["Reference range of serum sodium in adults?", "135&ndash;145&nbsp;mmol/L"],
        "mdx-0010",
        ["physiology", "nephrology"],
    ),
    (
        genanki.BASIC_MODEL,
        ["Which nerve is injured in wrist drop?", "The radial nerve<br>(e.g. midshaft humeral fracture)"],
        "mdx-0011",
        ["anatomy", "neurology"],
    ),
]


def build(out: Path) -> Path:
    deck = genanki.Deck(1_712_345_001, "Medical Curriculum (example)::Mixed")
    for model, fields, guid, tags in NOTES:
        deck.add_note(genanki.Note(model=model, fields=fields, guid=guid, tags=tags))
    package = genanki.Package(deck)
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "collection.anki2"
        con = sqlite3.connect(db)
        ids = iter(range(int(TIMESTAMP * 1000), int(TIMESTAMP * 1000) + 10_000))
        package.write_to_db(con.cursor(), TIMESTAMP, ids)
        con.commit()
        con.close()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, data in (("collection.anki2", db.read_bytes()), ("media", b"{}")):
                info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
                info.compress_type = zipfile.ZIP_DEFLATED
                zf.writestr(info, data)
    return out


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name("medical_deck.apkg")
    print(build(target))
