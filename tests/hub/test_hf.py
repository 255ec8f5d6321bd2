"""Hugging Face files through a fake Hub and CDN on 127.0.0.1: resolved by huggingface_hub,
downloaded resumably, verified against the LFS sha256, the token kept to the Hub."""

from __future__ import annotations

import json

import pytest
from hub_fakes import (
    COMMIT,
    DATA,
    FAST,
    OTHER,
    hf_recipe,
    one,
    sha,
    write_recipe,
)

from meadow.hub import http as http_mod
from meadow.hub.fetch import fetch
from meadow.hub.lock import LOCK_NAME
from meadow.hub.source_card import SOURCE_CARD


def test_hf_file_resolves_through_the_hub_and_downloads_from_the_cdn(workdir, file_hub):
    hub_server, cdn, state = file_hub
    state["files"]["oasst.jsonl.gz"] = DATA
    recipe = hf_recipe(workdir)
    item = one(fetch(recipe, progress=False, net=FAST))
    assert item.status == "downloaded", item.detail
    assert (workdir / "data/raw/openassistant/oasst.jsonl.gz").read_bytes() == DATA
    head = [s for s in hub_server.seen if s.method == "HEAD"]
    assert head and head[0].path == "/datasets/org/data/resolve/main/oasst.jsonl.gz"
    assert head[0].headers["authorization"] == "Bearer hf_secret_token"
    (get,) = [s for s in cdn.seen if s.method == "GET"]
    assert "authorization" not in get.headers  # the token never leaves the Hub
    entry = json.loads((workdir / "data/raw" / LOCK_NAME).read_text())["files"][
        "openassistant/oasst.jsonl.gz"
    ]
    assert entry["revision"] == COMMIT and entry["sha256"] == sha(DATA) and entry["repo_id"] == "org/data"
    text = (workdir / "data/raw" / LOCK_NAME).read_text() + (
        workdir / "data/raw/openassistant" / SOURCE_CARD
    ).read_text()
    assert "hf_secret_token" not in text

    # The lock pins the branch to the commit first fetched.
    (workdir / "data/raw/openassistant/oasst.jsonl.gz").unlink()
    hub_server.seen.clear()
    assert one(fetch(recipe, progress=False, net=FAST)).status == "downloaded"
    assert hub_server.seen[0].path == f"/datasets/org/data/resolve/{COMMIT}/oasst.jsonl.gz"


def test_hf_lfs_etag_verifies_the_content(workdir, file_hub, monkeypatch):
    hub_server, cdn, state = file_hub
    state["files"]["oasst.jsonl.gz"] = DATA
    recipe = hf_recipe(workdir)
    real = http_mod.download

    def corrupting(url, dest, **kwargs):  # the CDN sends other bytes than the Hub vouches for
        state["files"]["oasst.jsonl.gz"] = DATA[::-1]
        return real(url.replace(sha(DATA), sha(DATA[::-1])), dest, **kwargs)

    monkeypatch.setattr(http_mod, "download", corrupting)
    item = one(fetch(recipe, progress=False, net=FAST))
    assert item.status == "error" and "checksum mismatch" in item.detail
    assert not (workdir / "data/raw/openassistant/oasst.jsonl.gz").exists()


def test_hf_small_git_file_is_served_by_the_hub_itself(workdir, file_hub):
    hub_server, cdn, state = file_hub
    state["small"]["README.md"] = b"# card\n"
    recipe = hf_recipe(workdir, "README.md", revision=OTHER)
    item = one(fetch(recipe, progress=False, net=FAST))
    assert item.status == "downloaded"
    gets = [s for s in hub_server.seen if s.method == "GET"]
    assert gets[0].path == f"/datasets/org/data/resolve/{OTHER}/README.md"
    assert gets[0].headers["authorization"] == "Bearer hf_secret_token"  # same origin: a private repo works


@pytest.mark.parametrize(
    ("setup", "words"),
    [
        (lambda s: s.update(gated=True), "is gated"),
        (lambda s: None, "has no file"),
    ],
)
def test_hf_errors_are_clear(workdir, file_hub, setup, words):
    hub_server, cdn, state = file_hub
    setup(state)
    item = one(fetch(hf_recipe(workdir), progress=False, net=FAST))
    assert item.status == "error" and words in item.detail and "org/data" in item.detail


def test_hf_missing_repo_and_revision(workdir, file_hub):
    hub_server, cdn, state = file_hub
    recipe = write_recipe(
        workdir,
        {
            "o": {
                "loader": "openassistant",
                "path": "data/raw/o/x",
                "fetch": [
                    {"kind": "hf", "repo_id": "org/missing", "file": "x"},
                    {"kind": "hf", "repo_id": "org/data", "file": "x", "revision": "v9"},
                ],
            }
        },
    )
    missing, revision = fetch(recipe, progress=False, net=FAST).items
    assert missing.status == "error" and "was not found" in missing.detail and "HF_TOKEN" in missing.detail
    assert revision.status == "error" and "no revision 'v9'" in revision.detail


def test_hf_dry_run_asks_the_hub_for_the_size(workdir, file_hub):
    hub_server, cdn, state = file_hub
    state["files"]["oasst.jsonl.gz"] = DATA
    item = one(fetch(hf_recipe(workdir), dry_run=True, progress=False, net=FAST))
    assert (item.status, item.size) == ("would download", len(DATA))
    assert cdn.seen == [] and not (workdir / "data").exists()


def test_an_endpoint_that_is_not_a_hub_is_named(workdir, server, files, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    files["/datasets/org/data/resolve/main/oasst.jsonl.gz"] = DATA  # a plain file server
    item = one(fetch(hf_recipe(workdir), progress=False, net=FAST))
    assert item.status == "error" and "X-Repo-Commit" in item.detail and "HF_ENDPOINT" in item.detail
