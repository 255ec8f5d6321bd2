"""meadow fetch: downloads against local HTTP servers on 127.0.0.1 (plain files, a fake Hub
and CDN, a fake OSF API), resume, verification, the lock, archives, manual and Kaggle sources."""

from __future__ import annotations

import fnmatch
import hashlib
import importlib.util
import io
import json
import shutil
import socket
import tarfile
import threading
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from meadow.cli import app
from meadow.errors import MeadowError
from meadow.hub import fetch as fetch_mod
from meadow.hub.fetch import LOCK_NAME, SOURCE_CARD, FetchError, Net, extract, fetch, kaggle_api
from meadow.schemas.recipe import load_recipe

FAST = Net(retries=2, backoff=0.01, max_backoff=0.05, timeout=5)
REPO = Path(__file__).resolve().parents[1]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------- a local server


@dataclass
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    drop_after: int | None = None  # send this many body bytes, then cut the connection


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]


class Server:
    """A threaded HTTP server on 127.0.0.1 (port 0) answering with ``handler(request)``."""

    def __init__(self, handler: Callable[[Seen], Reply]):
        self.handler = handler
        self.seen: list[Seen] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                request = Seen(self.command, self.path, {k.lower(): v for k, v in self.headers.items()})
                outer.seen.append(request)
                reply = outer.handler(request)
                self.send_response(reply.status)
                headers = {"Content-Length": str(len(reply.body)), **reply.headers}
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                if self.command == "HEAD":
                    return
                if reply.drop_after is not None:
                    self.wfile.write(reply.body[: reply.drop_after])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.wfile.write(reply.body)

            do_GET = do_HEAD = do_POST = _serve  # noqa: N815

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> Server:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)

    def gets(self, path: str) -> list[Seen]:
        return [s for s in self.seen if s.method == "GET" and s.path == path]


def serve_bytes(request: Seen, data: bytes, etag: str | None = None) -> Reply:
    """A static file with Range and If-Range support, like a CDN."""
    etag = etag or f'"{sha(data)}"'
    headers = {"ETag": etag, "Accept-Ranges": "bytes"}
    rng = request.headers.get("range")
    if_range = request.headers.get("if-range")
    if rng and (if_range is None or if_range == etag):
        start = int(rng.removeprefix("bytes=").split("-")[0])
        if start >= len(data):
            return Reply(416, {"Content-Range": f"bytes */{len(data)}"})
        headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        return Reply(206, headers, data[start:])
    return Reply(200, headers, data)


@pytest.fixture
def files() -> dict[str, Any]:
    """Path -> bytes, or a callable(request) -> Reply, served by the ``server`` fixture."""
    return {}


@pytest.fixture
def server(files: dict[str, Any]) -> Iterator[Server]:
    def handler(request: Seen) -> Reply:
        what = files.get(request.path.split("?")[0])
        if what is None:
            return Reply(404, body=b"not found")
        return what(request) if callable(what) else serve_bytes(request, what)

    with Server(handler) as s:
        yield s


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write_recipe(workdir: Path, sources: dict[str, Any]) -> Path:
    path = workdir / "recipe.yaml"
    path.write_text(yaml.safe_dump({"name": "t", "sources": sources}, sort_keys=False), encoding="utf-8")
    return path


def url_recipe(workdir: Path, url: str, **extra: Any) -> Path:
    """A recipe with one source ``s`` reading ``data/raw/s/f.bin``, fetched from ``url``."""
    fetch_entry = {"kind": "url", "url": url, **extra}
    return write_recipe(
        workdir, {"s": {"loader": "cord19", "path": "data/raw/s/f.bin", "fetch": fetch_entry}}
    )


def one(report: Any) -> Any:
    assert len(report.items) == 1, report.items
    return report.items[0]


DATA = bytes(range(256)) * 1200  # 300 KiB, not a multiple of any chunk size


# --------------------------------------------------------------------------- plain URLs


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


def test_a_file_already_in_place_is_recorded_then_verified(workdir, server, files):
    recipe = url_recipe(workdir, f"{server.url}/f.bin")
    dest = workdir / "data/raw/s/f.bin"
    dest.parent.mkdir(parents=True)
    dest.write_bytes(DATA)
    item = one(fetch(recipe, progress=False, net=FAST))
    assert item.status == "recorded" and server.seen == []
    assert one(fetch(recipe, progress=False, net=FAST)).status == "ok"


# --------------------------------------------------------------------------- archives


def make_tar(members: dict[str, bytes], *, evil: bool = False) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        if evil:
            info = tarfile.TarInfo("../escape.csv")
            info.size = 3
            tf.addfile(info, io.BytesIO(b"bad"))
            link = tarfile.TarInfo("data/dev/link.csv")
            link.type = tarfile.SYMTYPE
            link.linkname = "/etc/passwd"
            tf.addfile(link)
    return buf.getvalue()


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


# --------------------------------------------------------------------------- manual sources


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


def test_a_source_without_fetch_entries(workdir):
    recipe = write_recipe(workdir, {"s": {"loader": "cord19", "path": "data/raw/s/metadata.csv"}})
    item = one(fetch(recipe, progress=False, net=FAST))
    assert item.status == "no entry" and "no fetch entry" in item.detail


# --------------------------------------------------------------------------- Hugging Face


COMMIT = "a" * 40
OTHER = "b" * 40


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Server, Server, dict[str, Any]]]:
    """A fake Hub (the resolve endpoint, as huggingface_hub's HEAD and our GET use it) and a
    fake CDN on another port. An LFS file answers like the Hub: 302 to the CDN with
    X-Repo-Commit, X-Linked-Etag (its sha256), X-Linked-Size; a small git file answers 200
    with ETag (git sha1) and Content-Length."""
    state: dict[str, Any] = {"files": {}, "gated": False, "small": {}}

    def cdn_handler(request: Seen) -> Reply:
        digest = request.path.rsplit("/", 1)[-1]
        for data in state["files"].values():
            if sha(data) == digest:
                return serve_bytes(request, data)
        return Reply(404)

    with Server(cdn_handler) as cdn:

        def hub_handler(request: Seen) -> Reply:
            parts = request.path.split("?")[0].split("/")
            # /datasets/<org>/<name>/resolve/<revision>/<file...>
            if len(parts) < 7 or parts[1] != "datasets" or parts[4] != "resolve":
                return Reply(404, body=b"")
            repo, revision, name = f"{parts[2]}/{parts[3]}", parts[5], "/".join(parts[6:])
            if repo != "org/data":
                return Reply(404, {"X-Error-Code": "RepoNotFound", "X-Error-Message": "Repository not found"})
            if state["gated"]:
                return Reply(
                    403, {"X-Error-Code": "GatedRepo", "X-Error-Message": "Access to this repo is gated"}
                )
            if revision not in ("main", COMMIT, OTHER):
                return Reply(404, {"X-Error-Code": "RevisionNotFound", "X-Error-Message": "Invalid rev id"})
            commit = COMMIT if revision == "main" else revision
            if name in state["small"]:
                data = state["small"][name]
                return Reply(200, {"X-Repo-Commit": commit, "ETag": '"' + "c" * 40 + '"'}, data)
            if name not in state["files"]:
                return Reply(404, {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": commit})
            data = state["files"][name]
            return Reply(
                302,
                {
                    "Location": f"{cdn.url}/blobs/{sha(data)}",
                    "X-Repo-Commit": commit,
                    "X-Linked-Etag": f'"{sha(data)}"',
                    "X-Linked-Size": str(len(data)),
                    "ETag": f'"{sha(data)}"',
                },
            )

        with Server(hub_handler) as hub_server:
            monkeypatch.setenv("HF_ENDPOINT", hub_server.url)
            monkeypatch.setenv("HF_TOKEN", "hf_secret_token")
            monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
            yield hub_server, cdn, state


def hf_recipe(workdir: Path, name: str = "oasst.jsonl.gz", **extra: Any) -> Path:
    return write_recipe(
        workdir,
        {
            "openassistant": {
                "loader": "openassistant",
                "path": f"data/raw/openassistant/{name}",
                "fetch": {"kind": "hf", "repo_id": "org/data", "file": name, **extra},
            }
        },
    )


def test_hf_file_resolves_through_the_hub_and_downloads_from_the_cdn(workdir, hub):
    hub_server, cdn, state = hub
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


def test_hf_lfs_etag_verifies_the_content(workdir, hub, monkeypatch):
    hub_server, cdn, state = hub
    state["files"]["oasst.jsonl.gz"] = DATA
    recipe = hf_recipe(workdir)
    real = fetch_mod.download

    def corrupting(url, dest, **kwargs):  # the CDN sends other bytes than the Hub vouches for
        state["files"]["oasst.jsonl.gz"] = DATA[::-1]
        return real(url.replace(sha(DATA), sha(DATA[::-1])), dest, **kwargs)

    monkeypatch.setattr(fetch_mod, "download", corrupting)
    item = one(fetch(recipe, progress=False, net=FAST))
    assert item.status == "error" and "checksum mismatch" in item.detail
    assert not (workdir / "data/raw/openassistant/oasst.jsonl.gz").exists()


def test_hf_small_git_file_is_served_by_the_hub_itself(workdir, hub):
    hub_server, cdn, state = hub
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
def test_hf_errors_are_clear(workdir, hub, setup, words):
    hub_server, cdn, state = hub
    setup(state)
    item = one(fetch(hf_recipe(workdir), progress=False, net=FAST))
    assert item.status == "error" and words in item.detail and "org/data" in item.detail


def test_hf_missing_repo_and_revision(workdir, hub):
    hub_server, cdn, state = hub
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


def test_hf_dry_run_asks_the_hub_for_the_size(workdir, hub):
    hub_server, cdn, state = hub
    state["files"]["oasst.jsonl.gz"] = DATA
    item = one(fetch(hf_recipe(workdir), dry_run=True, progress=False, net=FAST))
    assert (item.status, item.size) == ("would download", len(DATA))
    assert cdn.seen == [] and not (workdir / "data").exists()


def test_an_endpoint_that_is_not_a_hub_is_named(workdir, server, files, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    files["/datasets/org/data/resolve/main/oasst.jsonl.gz"] = DATA  # a plain file server
    item = one(fetch(hf_recipe(workdir), progress=False, net=FAST))
    assert item.status == "error" and "X-Repo-Commit" in item.detail and "HF_ENDPOINT" in item.detail


# --------------------------------------------------------------------------- OSF


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


# --------------------------------------------------------------------------- Kaggle


def test_kaggle_without_credentials_is_a_clear_error_and_prints_nothing(tmp_path, monkeypatch, capsys):
    if importlib.util.find_spec("kaggle") is None:  # importing it would print: don't
        pytest.skip("the kaggle package is not installed")
    for var in ("KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN", "KAGGLE_KERNEL_RUN_TYPE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "kaggle"))
    with pytest.raises(FetchError) as err:
        kaggle_api()
    assert "kaggle.json" in str(err.value) and "KAGGLE_USERNAME" in str(err.value)
    assert capsys.readouterr().out == ""


def test_kaggle_download_is_unzipped_verified_and_recorded(workdir, monkeypatch):
    csv = b"cord_uid,title,abstract\nx1,T,A\n"
    calls = []

    class FakeApi:
        def dataset_download_file(self, dataset, file_name, path, force, quiet):
            calls.append((dataset, file_name))
            with zipfile.ZipFile(Path(path) / f"{file_name}.zip", "w") as zf:  # Kaggle zips big files
                zf.writestr(file_name, csv)

    monkeypatch.setattr(fetch_mod, "kaggle_api", FakeApi)
    recipe = write_recipe(
        workdir,
        {
            "cord19": {
                "loader": "cord19",
                "path": "data/raw/cord19/metadata.csv",
                "fetch": {
                    "kind": "kaggle",
                    "dataset": "allen-institute-for-ai/CORD-19-research-challenge",
                    "file": "metadata.csv",
                },
            }
        },
    )
    item = one(fetch(recipe, progress=False, net=FAST))
    assert item.status == "downloaded", item.detail
    assert (workdir / "data/raw/cord19/metadata.csv").read_bytes() == csv
    assert not list((workdir / "data/raw/cord19").glob(".*kaggle*"))
    assert calls == [("allen-institute-for-ai/CORD-19-research-challenge", "metadata.csv")]
    assert one(fetch(recipe, progress=False, net=FAST)).status == "ok"
    assert len(calls) == 1


def test_kaggle_source_without_credentials_says_what_to_do(workdir, monkeypatch):
    def no_credentials():
        raise FetchError(fetch_mod.KAGGLE_HELP)

    monkeypatch.setattr(fetch_mod, "kaggle_api", no_credentials)
    recipe = write_recipe(
        workdir,
        {
            "cord19": {
                "loader": "cord19",
                "path": "data/raw/cord19/metadata.csv",
                "fetch": {"kind": "kaggle", "dataset": "a/b", "file": "metadata.csv"},
            }
        },
    )
    item = one(fetch(recipe, progress=False, net=FAST))
    assert (
        item.status == "error"
        and "kaggle.json" in item.detail
        and "https://www.kaggle.com/datasets/a/b" in item.detail
    )


# --------------------------------------------------------------------------- dry run, CLI, recipes


def test_dry_run_lists_sizes_and_writes_nothing(workdir, server, files):
    files["/f.bin"] = DATA
    recipe = write_recipe(
        workdir,
        {
            "s": {
                "loader": "cord19",
                "path": "data/raw/s/f.bin",
                "fetch": [
                    {"kind": "url", "url": f"{server.url}/f.bin"},
                    {"kind": "url", "url": f"{server.url}/g.bin", "size": 5},
                    {"kind": "manual", "file": "h.json", "url": "https://example.org"},
                ],
            }
        },
    )
    report = fetch(recipe, dry_run=True, progress=False, net=FAST)
    statuses = [(i.status, i.size) for i in report.items]
    assert statuses == [("would download", len(DATA)), ("would download", 5), ("manual", None)]
    assert not (workdir / "data").exists()
    assert [s.method for s in server.seen] == ["HEAD"]
    result = CliRunner().invoke(app, ["fetch", str(recipe), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "2 file(s) to download" in result.output and not (workdir / "data").exists()


def test_cli_fetch_succeeds_and_unknown_sources_are_named(workdir, server, files):
    files["/f.bin"] = DATA
    recipe = url_recipe(workdir, f"{server.url}/f.bin")
    result = CliRunner().invoke(app, ["fetch", str(recipe), "-q", "--only", "s"])
    assert result.exit_code == 0, result.output
    assert "verified" in result.output
    result = CliRunner().invoke(app, ["fetch", str(recipe), "--only", "nope"])
    assert result.exit_code == 1 and "no source or benchmark named 'nope'" in result.output


def test_fetch_entries_are_validated_with_the_line(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(
        "name: t\nsources:\n  s:\n    loader: cord19\n    path: x.csv\n    fetch:\n"
        "      kind: url\n      url: https://example.org/x.csv\n      sha256: nothex\n"
        "      to: ../escape.csv\n",
        encoding="utf-8",
    )
    with pytest.raises(MeadowError) as err:
        load_recipe(path)
    text = str(err.value)
    # the key path as written: a one-entry shorthand has no index, the union's tag (url) no place
    assert f"{path}:9: sources.s.fetch.sha256" in text
    assert f"{path}:10: sources.s.fetch.to" in text and "inside the source's folder" in text


def test_v1_fetch_entries_land_where_the_recipe_reads():
    recipe = load_recipe(REPO / "recipes" / "v1.yaml")
    for name, entry in recipe.sources.items():
        assert entry.fetch, f"{name} has no fetch entry"
        patterns = entry.patterns()
        assert all(p.startswith(f"data/raw/{name}/") for p in patterns), (name, patterns)
        for fe in entry.fetch:
            if fe.extract:
                root = f"data/raw/{name}/{fe.extract_to}".rstrip("/")
                assert any(
                    fnmatch.fnmatch(f"{root}/{m}".replace("*", "x.csv"), p) or p.startswith(root)
                    for m in fe.members
                    for p in patterns
                ), (name, fe)
            else:
                dest = f"data/raw/{name}/{fe.destination()}"
                assert any(fnmatch.fnmatch(dest, p) or dest == p for p in patterns), (name, dest, patterns)


def test_v1_benchmark_fetch_entries_land_where_the_recipe_reads():
    recipe = load_recipe(REPO / "recipes" / "v1.yaml")
    assert set(recipe.benchmarks) == {"mmlu_test", "medqa_test", "usmle", "pubmedqa"}
    assert recipe.decontaminate.benchmarks == list(recipe.benchmarks)
    for name, entry in recipe.benchmarks.items():
        assert entry.fetch, f"{name} has no fetch entry"
        patterns = entry.patterns()
        assert all(p.startswith(f"data/raw/{name}/") for p in patterns), (name, patterns)
        for fe in entry.fetch:
            if fe.extract:
                root = f"data/raw/{name}/{fe.extract_to}".rstrip("/")
                assert all(any(fnmatch.fnmatch(f"{root}/{m}", p) for p in patterns) for m in fe.members), fe
            elif not fe.destination().endswith(("_solutions.json", "question_with_images.json")):
                dest = f"data/raw/{name}/{fe.destination()}"  # (solutions are read beside the steps)
                assert any(fnmatch.fnmatch(dest, p) for p in patterns), (name, dest, patterns)


# --------------------------------------------------------------------------- benchmarks


PUBMEDQA = {
    "ori_pqal.json": json.dumps(
        {
            "101": {
                "QUESTION": "Does regular aerobic exercise lower resting blood pressure in older adults?",
                "CONTEXTS": [
                    "Hypertension is common in older adults and raises the risk of stroke and heart failure.",
                    "We randomised 240 adults aged 65 to 80 years to supervised walking or usual care.",
                ],
                "final_decision": "yes",
            },
            "102": {
                "QUESTION": "Is coffee intake associated with atrial fibrillation?",
                "CONTEXTS": [
                    "A cohort of 8,000 adults reported coffee intake and was followed for 10 years."
                ],
                "final_decision": "no",
            },
        }
    ).encode(),
    "test_ground_truth.json": json.dumps({"101": "yes"}).encode(),
}


def benchmark_recipe(workdir: Path, url: str) -> Path:
    """A source ``s`` and a benchmark ``pubmedqa`` whose two files come from ``url``."""
    path = workdir / "recipe.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "name": "t",
                "sources": {
                    "s": {
                        "loader": "chatdoctor",
                        "path": "data/raw/s/iCliniq.json",
                        "fetch": {"kind": "url", "url": f"{url}/iCliniq.json"},
                    }
                },
                "benchmarks": {
                    "pubmedqa": {
                        "kind": "pubmedqa",
                        "path": "data/raw/pubmedqa/*.json",
                        "fetch": [{"kind": "url", "url": f"{url}/{name}"} for name in PUBMEDQA],
                    }
                },
            },
            sort_keys=False,
        ),
        encoding="utf-8",
    )
    return path


def test_benchmarks_are_fetched_checked_and_decontaminated_against(workdir, server, files):
    copied = (
        "Hypertension is common in older adults and raises the risk of stroke and heart failure. "
        "We randomised 240 adults aged 65 to 80 years to supervised walking"
    )
    files["/iCliniq.json"] = json.dumps(
        [
            {
                "instruction": "Answer as a doctor.",
                "input": "Summarise: " + copied,
                "output": "Walking helps.",
            },
            {"instruction": "Answer as a doctor.", "input": "I have a cough since May.", "output": "Rest."},
        ]
    ).encode()
    for name, data in PUBMEDQA.items():
        files[f"/{name}"] = data
    recipe = benchmark_recipe(workdir, server.url)
    report = fetch(recipe, only=["pubmedqa"], progress=False, net=FAST)
    assert [(i.source, i.key, i.status) for i in report.items] == [
        ("pubmedqa", "pubmedqa/ori_pqal.json", "downloaded"),
        ("pubmedqa", "pubmedqa/test_ground_truth.json", "downloaded"),
    ]
    assert not (workdir / "data/raw/s").exists()
    card = (workdir / "data/raw/pubmedqa" / SOURCE_CARD).read_text()
    assert "the benchmark `pubmedqa` (kind `pubmedqa`; evaluation only" in card and "MIT" in card
    assert "PubMedQA: A Dataset for Biomedical Research Question Answering" in card
    lock = json.loads((workdir / "data/raw" / LOCK_NAME).read_text())["files"]
    assert lock["pubmedqa/ori_pqal.json"]["sha256"] == sha(PUBMEDQA["ori_pqal.json"])
    # meadow check names the source still missing, and lists the benchmark
    result = CliRunner().invoke(app, ["check", str(recipe)])
    assert result.exit_code == 1 and "ok pubmedqa: benchmark pubmedqa" in result.output
    assert "1 of 2 sources and benchmarks have no input file" in result.output
    assert one(fetch(recipe, only=["s"], progress=False, net=FAST)).status == "downloaded"
    result = CliRunner().invoke(app, ["fetch", str(recipe), "-q"])
    assert result.exit_code == 0 and "verified" in result.output, result.output
    # the fetched benchmark is what the build decontaminates against
    from meadow.build import build

    m = build(recipe, output_dir=workdir / "out", progress=False).manifest
    assert m["sources"]["s"]["contaminated"] == {"pubmedqa": 1} and m["sources"]["s"]["sampled"] == 1
    assert m["decontamination"]["benchmarks"]["pubmedqa"]["questions"] == 1  # the test set only


def test_a_file_another_entry_fetched_is_linked_not_downloaded_again(workdir, server, files):
    members = {
        "data/dev/anatomy_dev.csv": b"q,a,b,c,d,A\n",
        "data/test/anatomy_test.csv": b"test,a,b,c,d,C\n",
        "data/test/astronomy_test.csv": b"sky,a,b,c,d,C\n",
    }
    files["/data.tar"] = make_tar(members)
    tar = {"kind": "url", "url": f"{server.url}/data.tar", "extract": True}
    recipe = workdir / "recipe.yaml"
    recipe.write_text(
        yaml.safe_dump(
            {
                "name": "t",
                "sources": {
                    "mmlu": {
                        "loader": "mmlu",
                        "path": "data/raw/mmlu/data/dev/*.csv",
                        "fetch": {**tar, "members": ["data/dev/*"]},
                    }
                },
                "benchmarks": {
                    "mmlu_test": {
                        "kind": "mmlu",
                        "path": "data/raw/mmlu_test/data/test/*.csv",
                        "fetch": {**tar, "members": ["data/test/anatomy_test.csv"]},
                    }
                },
            }
        ),
        encoding="utf-8",
    )
    report = fetch(recipe, progress=False, net=FAST)
    assert [i.status for i in report.items] == ["downloaded", "copied"]
    assert "the same file as mmlu/data.tar" in report.items[1].detail
    assert "unpacked 1 files" in report.items[1].detail
    assert len(server.gets("/data.tar")) == 1
    raw = workdir / "data/raw"
    assert (raw / "mmlu_test/data.tar").read_bytes() == files["/data.tar"]
    assert (raw / "mmlu_test/data/test/anatomy_test.csv").read_bytes() == members[
        "data/test/anatomy_test.csv"
    ]
    assert not (raw / "mmlu_test/data/test/astronomy_test.csv").exists()
    assert not (raw / "mmlu/data/test").exists()
    lock = json.loads((raw / LOCK_NAME).read_text())["files"]
    assert lock["mmlu_test/data.tar"]["sha256"] == lock["mmlu/data.tar"]["sha256"] == sha(files["/data.tar"])
    again = fetch(recipe, progress=False, net=FAST)
    assert [i.status for i in again.items] == ["ok", "ok"] and len(server.gets("/data.tar")) == 1
    # a dry run on a fresh benchmark folder says it would copy, not download
    shutil.rmtree(raw / "mmlu_test")
    planned = fetch(recipe, dry_run=True, progress=False, net=FAST).items[1]
    assert planned.status == "would copy" and planned.size == len(files["/data.tar"])
    # a twin that changed on disk is not trusted: the file is downloaded
    (raw / "mmlu/data.tar").write_bytes(b"not the tarball")
    assert fetch(recipe, only=["mmlu_test"], progress=False, net=FAST).items[0].status == "downloaded"


def test_a_manual_benchmark_file_is_linked_from_the_source_that_has_it(workdir):
    url = "https://drive.google.com/file/d/abc/view"
    manual = {"kind": "manual", "file": "data_clean.zip", "url": url, "extract": True}
    recipe = workdir / "recipe.yaml"
    recipe.write_text(
        yaml.safe_dump(
            {
                "name": "t",
                "sources": {
                    "medqa": {
                        "loader": "medqa",
                        "path": "data/raw/medqa/data_clean/questions/US/train.jsonl",
                        "fetch": {**manual, "members": ["data_clean/questions/US/train.jsonl"]},
                    }
                },
                "benchmarks": {
                    "medqa_test": {
                        "kind": "medqa",
                        "path": "data/raw/medqa_test/data_clean/questions/US/test.jsonl",
                        "fetch": {**manual, "members": ["data_clean/questions/US/test.jsonl"]},
                    }
                },
            }
        ),
        encoding="utf-8",
    )
    items = fetch(recipe, progress=False, net=FAST).items
    assert [i.status for i in items] == ["manual", "manual"]
    assert "put it at data/raw/medqa_test/data_clean.zip" in items[1].detail
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("data_clean/questions/US/train.jsonl", '{"question": "q"}\n')
        zf.writestr("data_clean/questions/US/test.jsonl", '{"question": "t"}\n')
    (workdir / "data/raw/medqa").mkdir(parents=True, exist_ok=True)
    (workdir / "data/raw/medqa/data_clean.zip").write_bytes(buf.getvalue())
    items = fetch(recipe, progress=False, net=FAST).items
    assert [i.status for i in items] == ["recorded", "copied"]
    assert (
        workdir / "data/raw/medqa_test/data_clean/questions/US/test.jsonl"
    ).read_text() == '{"question": "t"}\n'
    assert [i.status for i in fetch(recipe, progress=False, net=FAST).items] == ["ok", "ok"]


def test_usmle_benchmark_from_the_hub_is_fetched_and_used(workdir, hub):
    _, _, state = hub
    usmle = REPO / "examples" / "usmle"
    names = ["step1.json", "step1_solutions.json", "question_with_images.json"]
    for name in names:
        state["small"][name] = (usmle / name).read_bytes()
    question = json.loads((usmle / "step1.json").read_text())[0]["question"]
    (workdir / "data/raw/s").mkdir(parents=True)
    (workdir / "data/raw/s/iCliniq.json").write_text(
        json.dumps([{"input": f"My exam asks: {question}", "answer_icliniq": "G6PD deficiency."}]),
        encoding="utf-8",
    )
    recipe = workdir / "recipe.yaml"
    recipe.write_text(
        yaml.safe_dump(
            {
                "name": "t",
                "sources": {"s": {"loader": "chatdoctor", "path": "data/raw/s/iCliniq.json"}},
                "benchmarks": {
                    "usmle": {
                        "kind": "usmle",
                        "path": "data/raw/usmle/step?.json",
                        "fetch": [{"kind": "hf", "repo_id": "org/data", "file": name} for name in names],
                    }
                },
            }
        ),
        encoding="utf-8",
    )
    report = fetch(recipe, only=["usmle"], progress=False, net=FAST)
    assert [i.status for i in report.items] == ["downloaded"] * 3
    lock = json.loads((workdir / "data/raw" / LOCK_NAME).read_text())["files"]
    assert lock["usmle/step1.json"]["revision"] == COMMIT
    assert "the benchmark `usmle` (kind `usmle`" in (workdir / "data/raw/usmle" / SOURCE_CARD).read_text()
    from meadow.build import build

    m = build(recipe, output_dir=workdir / "out", progress=False).manifest
    assert m["sources"]["s"]["contaminated"] == {"usmle": 1}
    assert m["decontamination"]["benchmarks"]["usmle"]["removed"] == {
        "usmle_step1:has_image": 1,
        "usmle_step1:no_options": 1,
    }
