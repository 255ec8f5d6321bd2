"""meadow.hub.http through `meadow fetch` of plain URLs from a local server: Range resume, a killed
run's .part, verification, clear HTTP errors, bounded retries honouring Retry-After, redirects, and
a host out of reach (an unresolvable name, a refused connection) said at once, not retried."""

from __future__ import annotations

import json
import logging
import socket
import time
import urllib.error

import pytest
from hub_fakes import (
    DATA,
    FAST,
    Reply,
    Seen,
    one,
    serve_bytes,
    sha,
    url_recipe,
    write_recipe,
)

from meadow.hub.fetch import fetch
from meadow.hub.http import Net, unreachable
from meadow.hub.lock import LOCK_NAME
from meadow.hub.source_card import SOURCE_CARD


def test_download_resumes_after_a_connection_drop_and_records_the_lock(workdir, server, files):
    drops = [100_000]

    def flaky(request: Seen) -> Reply:
        reply = serve_bytes(request, DATA)
        if drops:
            reply.drop_after = drops.pop(0)
        return reply

    files["/x/pubmed.csv"] = flaky
    recipe = write_recipe(
        workdir,
        {
            "causal": {
                "loader": "pubmed_causal",
                "path": "data/raw/causal/pubmed.csv",
                "fetch": {"kind": "url", "url": f"{server.url}/x/pubmed.csv"},
            }
        },
    )
    report = fetch(recipe, progress=False, net=FAST)
    item = one(report)
    assert item.status == "downloaded", item.detail
    dest = workdir / "data/raw/causal/pubmed.csv"
    assert dest.read_bytes() == DATA
    assert not dest.with_name("pubmed.csv.part").exists()
    gets = server.gets("/x/pubmed.csv")
    assert len(gets) == 2
    assert "range" not in gets[0].headers
    assert gets[1].headers["range"] == "bytes=100000-"
    assert gets[1].headers["if-range"] == f'"{sha(DATA)}"'  # a changed file is never stitched
    lock = json.loads((workdir / "data/raw" / LOCK_NAME).read_text())
    entry = lock["files"]["causal/pubmed.csv"]
    assert entry["sha256"] == sha(DATA) and entry["size"] == len(DATA)
    assert entry["origin"] == f"{server.url}/x/pubmed.csv"
    card = (workdir / "data/raw/causal" / SOURCE_CARD).read_text()
    assert "GPL-3.0" in card and f"{server.url}/x/pubmed.csv" in card and sha(DATA) in card
    assert report.warnings == []  # the recipe's path matches what was fetched

    # Complete and in the lock: verified, not downloaded again.
    again = one(fetch(recipe, progress=False, net=FAST))
    assert (again.status, again.detail) == ("ok", "verified")
    assert len(server.gets("/x/pubmed.csv")) == 2


def test_a_killed_run_resumes_from_its_part_file(workdir, server, files):
    files["/f.bin"] = DATA
    recipe = url_recipe(workdir, f"{server.url}/f.bin")
    part = workdir / "data/raw/s/f.bin.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(DATA[:123_456])
    item = one(fetch(recipe, progress=False, net=FAST))
    assert item.status == "downloaded"
    assert (workdir / "data/raw/s/f.bin").read_bytes() == DATA
    (get,) = server.gets("/f.bin")
    assert get.headers["range"] == "bytes=123456-"


def test_a_server_that_ignores_range_restarts_the_file(workdir, server, files):
    files["/f.bin"] = lambda request: Reply(200, {}, DATA)  # no Range support
    recipe = url_recipe(workdir, f"{server.url}/f.bin")
    part = workdir / "data/raw/s/f.bin.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(b"garbage-from-another-version")
    assert one(fetch(recipe, progress=False, net=FAST)).status == "downloaded"
    assert (workdir / "data/raw/s/f.bin").read_bytes() == DATA


def test_checksum_mismatch_is_an_error_and_the_bad_file_is_removed(workdir, server, files):
    files["/f.bin"] = DATA
    recipe = url_recipe(workdir, f"{server.url}/f.bin", sha256="0" * 64)
    item = one(fetch(recipe, progress=False, net=FAST))
    assert item.status == "error"
    assert "checksum mismatch" in item.detail and "0" * 64 in item.detail and "removed" in item.detail
    assert not (workdir / "data/raw/s/f.bin").exists()
    assert not (workdir / "data/raw/s/f.bin.part").exists()
    assert not (workdir / "data/raw" / LOCK_NAME).exists()


@pytest.mark.parametrize(
    ("status", "words"),
    [(401, "refused"), (403, "refused"), (404, "not found"), (410, "not found")],
)
def test_http_errors_are_clear_and_not_retried(workdir, server, files, status, words):
    files["/f.bin"] = lambda request: Reply(status, body=b"no")
    recipe = url_recipe(workdir, f"{server.url}/f.bin")
    item = one(fetch(recipe, progress=False, net=FAST))
    assert item.status == "error"
    assert f"HTTP {status}" in item.detail and words in item.detail
    assert f"{server.url}/f.bin" in item.detail and "data/raw/s/f.bin" in item.detail
    assert len(server.gets("/f.bin")) == 1


def test_5xx_and_429_are_retried_with_retry_after(workdir, server, files):
    answers = [Reply(503, {"Retry-After": "0"}), Reply(429, {"Retry-After": "0"})]
    files["/f.bin"] = lambda request: answers.pop(0) if answers else serve_bytes(request, DATA)
    recipe = url_recipe(workdir, f"{server.url}/f.bin")
    assert one(fetch(recipe, progress=False, net=FAST)).status == "downloaded"
    assert len(server.gets("/f.bin")) == 3


def test_retries_are_bounded(workdir, server, files):
    files["/f.bin"] = lambda request: Reply(200, {"Content-Length": str(len(DATA))}, DATA, drop_after=0)
    recipe = url_recipe(workdir, f"{server.url}/f.bin")
    item = one(fetch(recipe, progress=False, net=FAST))
    assert item.status == "error" and "after 2 retries" in item.detail and "again to resume" in item.detail
    assert len(server.gets("/f.bin")) == FAST.retries + 1


def test_redirects_are_followed(workdir, server, files):
    files["/old"] = lambda request: Reply(302, {"Location": "/new/f.bin"})
    files["/new/f.bin"] = DATA
    recipe = url_recipe(workdir, f"{server.url}/old", to="f.bin")
    assert one(fetch(recipe, progress=False, net=FAST)).status == "downloaded"
    assert (workdir / "data/raw/s/f.bin").read_bytes() == DATA


# --------------------------------------------------------------------------- a host out of reach


SLOW = Net(retries=5, backoff=30.0, max_backoff=60.0, timeout=5)
"""Backoff that a test would notice: an unreachable host must not wait through it."""


def free_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("where", ["dns", "refused"])
def test_an_unreachable_host_is_said_plainly_not_retried_and_nothing_is_written(workdir, where):
    # a name under .invalid never resolves (RFC 6761); nothing listens on a released port
    host, url = (
        ("meadow-test.invalid", "http://meadow-test.invalid/f.bin")
        if where == "dns"
        else ("127.0.0.1", f"http://127.0.0.1:{free_port()}/f.bin")
    )
    recipe = url_recipe(workdir, url)
    started = time.monotonic()
    report = fetch(recipe, progress=False, net=SLOW)
    assert time.monotonic() - started < 10  # no backoff: 5 retries would wait 30 s and more
    item = one(report)
    assert item.status == "error" and f"cannot reach {host}" in item.detail and "no network?" in item.detail
    assert ("does not resolve" if where == "dns" else "connection refused") in item.detail
    assert "resum" not in item.detail
    # nothing is written, and nothing claims the file was fetched or recorded
    assert not (workdir / "data").exists()
    assert report.problem() == (
        "1 download(s) failed, 0 file(s) need a manual download (see above); "
        "nothing was downloaded or recorded"
    )


def test_unreachable_reads_the_errors_that_wrap_the_cause():
    """httpx (the Hub client) wraps the socket error; urllib keeps it as ``reason``."""
    try:
        try:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        except OSError as inner:
            raise RuntimeError("ConnectError") from inner
    except RuntimeError as err:
        wrapped = err
    assert unreachable(wrapped, "https://hub.invalid/api") == (
        "cannot reach hub.invalid: its name does not resolve (Name or service not known); no network?"
    )
    refused = urllib.error.URLError(ConnectionRefusedError(111, "Connection refused"))
    assert "nothing answers on port 443" in unreachable(refused, "https://example.org/x")
    assert unreachable(urllib.error.URLError(TimeoutError("timed out")), "https://example.org/x") is None
    assert unreachable(ConnectionResetError(104, "reset"), "https://example.org/x") is None


def test_a_retry_of_a_file_not_started_is_not_called_resuming(workdir, server, files, caplog):
    answers = [Reply(200, {"Content-Length": str(len(DATA))}, b"", drop_after=0)]
    files["/f.bin"] = lambda request: answers.pop(0) if answers else serve_bytes(request, DATA)
    recipe = url_recipe(workdir, f"{server.url}/f.bin")
    with caplog.at_level(logging.WARNING, logger="meadow.hub.http"):
        assert one(fetch(recipe, progress=False, net=FAST)).status == "downloaded"
    (said,) = [r.getMessage() for r in caplog.records]
    assert "retrying in" in said and "resuming" not in said
