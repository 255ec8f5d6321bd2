"""Local stand-ins for the servers the hub tests talk to, on 127.0.0.1: a plain HTTP file server,
a fake Hugging Face Hub (for `meadow push`), and the recipes and archives the fetch tests use.
The fixtures that start them are in conftest.py."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import socket
import tarfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

from meadow.hub.http import Net

FAST = Net(retries=2, backoff=0.01, max_backoff=0.05, timeout=5)
REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "recipes" / "demo.yaml"
TOKEN = "hf_test_secret_token_123"
DATA = bytes(range(256)) * 1200  # 300 KiB, not a multiple of any chunk size
COMMIT = "a" * 40
OTHER = "b" * 40


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


def front_matter(card: str) -> dict[str, Any]:
    assert card.startswith("---\n")
    return yaml.safe_load(card[4 : card.index("\n---\n", 4)])


@dataclass
class Call:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class FakeHub:
    """The Hub endpoints that whoami, create_repo, create_branch and create_commit use, for the
    dataset or model repository org/demo.

    Files are answered "regular" by preupload, so the commit carries them base64-encoded;
    the commit writes them to ``files``. Tokens other than TOKEN are rejected with 401."""

    def __init__(self, *, commit_status: int = 200):
        self.calls: list[Call] = []
        self.files: dict[str, bytes] = {}
        self.commit_status = commit_status
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                call = Call(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                hub.calls.append(call)
                status, payload = hub.answer(call)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                if status == 401:
                    self.send_header("X-Error-Message", "Invalid credentials in Authorization header")
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _serve  # noqa: N815

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)

    def answer(self, call: Call) -> tuple[int, Any]:
        if call.headers.get("authorization") != f"Bearer {TOKEN}":
            return 401, {"error": "Invalid credentials in Authorization header"}
        path = call.path.split("?")[0]
        if path == "/api/whoami-v2":
            return 200, {"name": "tester", "type": "user"}
        if path == "/api/repos/create":
            kind = json.loads(call.body).get("type") or "model"
            return 200, {"url": f"{self.url}/{'datasets/' if kind == 'dataset' else ''}org/demo"}
        if path == "/api/validate-yaml":
            return 200, {"errors": [], "warnings": []}
        path = path.replace("/api/models/", "/api/datasets/", 1)  # the same answers for both
        if path.startswith("/api/datasets/org/demo/branch/"):
            return 200, {}
        if path.startswith("/api/datasets/org/demo/preupload/"):
            files = json.loads(call.body)["files"]
            return 200, {
                "files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files]
            }
        if path.startswith("/api/datasets/org/demo/commit/"):
            if self.commit_status != 200:
                return self.commit_status, {"error": "You don't have the rights to write to org/demo"}
            for line in call.body.splitlines():
                item = json.loads(line)
                if item["key"] == "file":
                    self.files[item["value"]["path"]] = base64.b64decode(item["value"]["content"])
            return 200, {
                "commitUrl": f"{self.url}/datasets/org/demo/commit/{'c' * 40}",
                "commitOid": "c" * 40,
            }
        return 404, {"error": f"no route {path}"}

    def paths(self) -> list[str]:
        return [f"{c.method} {c.path.split('?')[0]}" for c in self.calls]
