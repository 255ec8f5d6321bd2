"""manual fetch entries: fetch says where to put the file, then verifies, records and unpacks it."""

from __future__ import annotations

import io
import json
import zipfile

from hub_fakes import (
    FAST,
    one,
    write_recipe,
)
from typer.testing import CliRunner

from meadow.cli import app
from meadow.hub.fetch import fetch
from meadow.hub.lock import LOCK_NAME


def test_manual_source_says_where_to_put_the_file_then_verifies_and_unpacks_it(workdir):
    url = "https://drive.google.com/file/d/abc/view"
    recipe = write_recipe(
        workdir,
        {
            "medqa": {
                "loader": "medqa",
                "path": "data/raw/medqa/data_clean/questions/US/train.jsonl",
                "fetch": {
                    "kind": "manual",
                    "file": "data_clean.zip",
                    "url": url,
                    "instructions": "Google Drive only",
                    "extract": True,
                    "members": ["data_clean/questions/US/*"],
                },
            }
        },
    )
    item = one(fetch(recipe, progress=False, net=FAST))
    assert item.status == "manual"
    assert url in item.detail and "put it at data/raw/medqa/data_clean.zip" in item.detail
    result = CliRunner().invoke(app, ["fetch", str(recipe), "-q"])
    assert result.exit_code == 1
    assert "manual download needed" in result.output and "Traceback" not in result.output

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("data_clean/questions/US/train.jsonl", '{"question": "q"}\n')
        zf.writestr("data_clean/textbooks/en/Anatomy.txt", "big textbook")
    zipped = workdir / "data/raw/medqa/data_clean.zip"
    zipped.write_bytes(buf.getvalue())
    item = one(fetch(recipe, progress=False, net=FAST))
    assert item.status == "recorded" and "unpacked 1 files" in item.detail
    assert (workdir / "data/raw/medqa/data_clean/questions/US/train.jsonl").exists()
    assert not (workdir / "data/raw/medqa/data_clean/textbooks").exists()
    assert one(fetch(recipe, progress=False, net=FAST)).status == "ok"
    zipped.write_bytes(b"another file")
    item = one(fetch(recipe, progress=False, net=FAST))
    assert item.status == "error" and "does not match" in item.detail


def test_manual_glob_records_every_file(workdir):
    recipe = write_recipe(
        workdir,
        {
            "flashcards": {
                "loader": "anki",
                "path": "data/raw/flashcards/*.apkg",
                "fetch": {"kind": "manual", "file": "*.apkg", "url": "https://ankiweb.net/shared/decks"},
            }
        },
    )
    assert one(fetch(recipe, progress=False, net=FAST)).status == "manual"
    folder = workdir / "data/raw/flashcards"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "a.apkg").write_bytes(b"deck a")
    (folder / "b.apkg").write_bytes(b"deck b")
    item = one(fetch(recipe, progress=False, net=FAST))
    assert item.status == "ok" and item.size == 12
    lock = json.loads((workdir / "data/raw" / LOCK_NAME).read_text())["files"]
    assert set(lock) == {"flashcards/a.apkg", "flashcards/b.apkg"}
