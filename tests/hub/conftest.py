"""Fixtures of the hub tests: the local servers of hub_fakes.py, a demo build."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hub_fakes import COMMIT, OTHER, TOKEN, FakeHub, Reply, Seen, Server, serve_bytes, sha


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


@pytest.fixture
def file_hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Server, Server, dict[str, Any]]]:
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


@pytest.fixture
def build_dir(demo_build: Path, tmp_path: Path) -> Path:
    """A private copy of the demo build (tests may break it)."""
    copy = tmp_path / "processed" / "demo"
    shutil.copytree(demo_build, copy)
    return copy


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHub]:
    server = FakeHub()
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    yield server
    server.close()
