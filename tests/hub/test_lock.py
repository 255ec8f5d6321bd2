"""sources.lock: a file nothing vouches for is trusted on first use and recorded; later fetches
verify against the record."""

from __future__ import annotations

from hub_fakes import (
    DATA,
    FAST,
    one,
    url_recipe,
)

from meadow.hub.fetch import fetch
from meadow.hub.lock import LOCK_NAME


def test_trust_on_first_use_then_an_upstream_change_is_caught(workdir, server, files):
    files["/f.bin"] = DATA
    recipe = url_recipe(workdir, f"{server.url}/f.bin")
    first = one(fetch(recipe, progress=False, net=FAST))
    assert first.status == "downloaded" and "trust on first use" in first.detail
    files["/f.bin"] = DATA[::-1]  # the upstream file changes under the same URL
    dest = workdir / "data/raw/s/f.bin"
    dest.write_bytes(b"corrupted locally")
    item = one(fetch(recipe, progress=False, net=FAST))
    assert item.status == "error" and "checksum mismatch" in item.detail and LOCK_NAME in item.detail
    assert not dest.exists() and not dest.with_name("f.bin.part").exists()


def test_a_file_already_in_place_is_recorded_then_verified(workdir, server, files):
    recipe = url_recipe(workdir, f"{server.url}/f.bin")
    dest = workdir / "data/raw/s/f.bin"
    dest.parent.mkdir(parents=True)
    dest.write_bytes(DATA)
    item = one(fetch(recipe, progress=False, net=FAST))
    assert item.status == "recorded" and server.seen == []
    assert one(fetch(recipe, progress=False, net=FAST)).status == "ok"
