"""meadow.hub.archives: tar and zip members unpacked safely, filtered, verified on later fetches."""

from __future__ import annotations

import json

import pytest
from hub_fakes import (
    FAST,
    make_tar,
    one,
    write_recipe,
)

from meadow.hub.archives import extract
from meadow.hub.errors import FetchError
from meadow.hub.fetch import fetch
from meadow.hub.lock import LOCK_NAME


def test_tar_is_unpacked_member_by_member_with_a_filter(workdir, server, files):
    members = {
        "data/dev/anatomy_dev.csv": b"q,a,b,c,d,A\n",
        "data/val/anatomy_val.csv": b"q2,a,b,c,d,B\n",
        "data/test/anatomy_test.csv": b"test,a,b,c,d,C\n",
    }
    files["/data.tar"] = make_tar(members, evil=True)
    recipe = write_recipe(
        workdir,
        {
            "mmlu": {
                "loader": "mmlu",
                "path": ["data/raw/mmlu/data/dev/*.csv", "data/raw/mmlu/data/val/*.csv"],
                "fetch": {
                    "kind": "url",
                    "url": f"{server.url}/data.tar",
                    "extract": True,
                    "members": ["data/dev/*", "data/val/*"],
                },
            }
        },
    )
    report = fetch(recipe, progress=False, net=FAST)
    item = one(report)
    assert item.status == "downloaded" and "unpacked 2 files" in item.detail, item.detail
    root = workdir / "data/raw/mmlu"
    assert (root / "data/dev/anatomy_dev.csv").read_bytes() == members["data/dev/anatomy_dev.csv"]
    assert (root / "data/val/anatomy_val.csv").exists()
    assert not (root / "data/test").exists()  # the test split is not unpacked
    assert not (workdir / "data/raw/escape.csv").exists() and not (root / "data/dev/link.csv").exists()
    lock = json.loads((workdir / "data/raw" / LOCK_NAME).read_text())["files"]["mmlu/data.tar"]
    assert set(lock["extracted"]["members"]) == {"data/dev/anatomy_dev.csv", "data/val/anatomy_val.csv"}
    assert report.warnings == []
    again = one(fetch(recipe, progress=False, net=FAST))
    assert again.status == "ok" and "2 archive members verified" in again.detail
    # A member changed on disk is unpacked again.
    (root / "data/dev/anatomy_dev.csv").write_bytes(b"edited")
    one(fetch(recipe, progress=False, net=FAST))
    assert (root / "data/dev/anatomy_dev.csv").read_bytes() == members["data/dev/anatomy_dev.csv"]


def test_extract_rejects_what_is_not_an_archive_and_unmatched_filters(tmp_path):
    plain = tmp_path / "x.csv"
    plain.write_text("a,b\n")
    with pytest.raises(FetchError, match="not a tar or zip"):
        extract(plain, tmp_path / "out", [])
    archive = tmp_path / "a.tar"
    archive.write_bytes(make_tar({"a/b.txt": b"x"}))
    with pytest.raises(FetchError, match="no file matching"):
        extract(archive, tmp_path / "out", ["nope/*"])
