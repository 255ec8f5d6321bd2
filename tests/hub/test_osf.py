"""OSF files found in a project's storage through a fake OSF API on 127.0.0.1, verified against
OSF's sha256."""

from __future__ import annotations

import json
from collections.abc import Callable

from hub_fakes import (
    FAST,
    Reply,
    Seen,
    one,
    sha,
    write_recipe,
)

from meadow.hub.fetch import fetch
from meadow.hub.lock import LOCK_NAME


def test_osf_file_is_found_in_a_folder_and_verified(workdir, server, files, monkeypatch):
    monkeypatch.setenv("MEADOW_OSF_API", f"{server.url}/v2")
    payload = json.dumps({"q1": {"question": "q"}}).encode()
    files["/download/xyz"] = payload

    def listing(data: list[dict], next_url: str | None = None) -> Callable[[Seen], Reply]:
        body = json.dumps({"data": data, "links": {"next": next_url}}).encode()
        return lambda request: Reply(200, {"Content-Type": "application/vnd.api+json"}, body)

    files["/v2/nodes/fyg46/files/osfstorage/"] = listing(
        [{"attributes": {"kind": "file", "name": "README.txt", "materialized_path": "/README.txt"}}],
        f"{server.url}/v2/page2",
    )
    files["/v2/page2"] = listing(
        [
            {
                "attributes": {"kind": "folder", "name": "data", "materialized_path": "/data/"},
                "relationships": {"files": {"links": {"related": {"href": f"{server.url}/v2/folder"}}}},
            }
        ]
    )
    entry = {
        "kind": "file",
        "name": "qa.json",
        "materialized_path": "/data/qa.json",
        "size": len(payload),
        "extra": {"hashes": {"sha256": sha(payload)}},
    }
    files["/v2/folder"] = listing(
        [{"attributes": entry, "links": {"download": f"{server.url}/download/xyz"}}]
    )
    recipe = write_recipe(
        workdir,
        {
            "mediqa": {
                "loader": "mediqa",
                "path": "data/raw/mediqa/qa.json",
                "fetch": {"kind": "osf", "project": "fyg46", "file": "qa.json"},
            }
        },
    )
    item = one(fetch(recipe, progress=False, net=FAST))
    assert item.status == "downloaded", item.detail
    assert (workdir / "data/raw/mediqa/qa.json").read_bytes() == payload

    entry["extra"]["hashes"]["sha256"] = "f" * 64  # OSF vouches for other bytes
    files["/v2/folder"] = listing(
        [{"attributes": entry, "links": {"download": f"{server.url}/download/xyz"}}]
    )
    (workdir / "data/raw/mediqa/qa.json").unlink()
    (workdir / "data/raw" / LOCK_NAME).unlink()
    item = one(fetch(recipe, progress=False, net=FAST))
    assert item.status == "error" and "checksum mismatch" in item.detail

    recipe = write_recipe(
        workdir,
        {
            "mediqa": {
                "loader": "mediqa",
                "path": "data/raw/mediqa/x.json",
                "fetch": {"kind": "osf", "project": "fyg46", "file": "other.json"},
            }
        },
    )
    item = one(fetch(recipe, progress=False, net=FAST))
    assert item.status == "error" and "no file 'other.json'" in item.detail and "data/qa.json" in item.detail
