"""A local OpenAI-compatible chat server for tests: it can answer well, answer garbage,
answer 429 with Retry-After, 500, hang, or drop the connection.

It binds 127.0.0.1 on a free port, serves from a daemon thread, and records every request
(by a hash of its body) so tests can count what reached the server.
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Action = tuple[Any, ...]
"""("ok", text) | ("status", code, {headers}) | ("hang", seconds) | ("drop",)"""


def last_user(body: dict[str, Any]) -> str:
    """The user message that holds the passage (earlier ones are the worked example)."""
    return [m["content"] for m in body["messages"] if m["role"] == "user"][-1]


def good_answer(body: dict[str, Any]) -> str:
    """A valid answer built from the prompt: what a capable model would say."""
    user = last_user(body)
    card = re.search(r"Front: (.*)\nBack: (.*?)\n\n", user, re.S)
    if card:
        front, back = card.group(1).strip(), card.group(2).strip()
        return json.dumps(
            {"question": f"What should you know about this: {front.rstrip('?')}?", "answer": f"{back}."}
        )
    heading = re.search(r"Heading: (.*)\n", user)
    if heading:
        return json.dumps({"question": f"What is the {heading.group(1).strip()}?"})
    return json.dumps({"question": "What is this?", "answer": "It is a test."})


def request_hash(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


class FakeOpenAI:
    def __init__(self, behave: Callable[[dict[str, Any], int], Action] | None = None, delay: float = 0.0):
        self.behave = behave or (lambda body, n: ("ok", good_answer(body)))
        self.delay = delay
        self.requests: Counter[str] = Counter()  # request hash -> times seen
        self.answered: Counter[str] = Counter()  # request hash -> times answered 200
        self.bodies: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # no 40 ms delayed-ACK stall between headers and body

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length))
                key = request_hash(body)
                with server.lock:
                    server.requests[key] += 1
                    seen = server.requests[key]
                    server.bodies.append(body)
                action = server.behave(body, seen)
                if server.delay:
                    time.sleep(server.delay)
                kind = action[0]
                if kind == "drop":
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.connection.close()
                    return
                if kind == "hang":
                    time.sleep(action[1])
                    self.close_connection = True
                    return
                if kind == "status":
                    payload = json.dumps(
                        {"error": {"message": f"fake error {action[1]}", "type": "fake"}}
                    ).encode()
                    self.send_response(action[1])
                    for k, v in (action[2] if len(action) > 2 else {}).items():
                        self.send_header(k, v)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                text = action[1]
                finish = action[2] if len(action) > 2 else "stop"
                payload = json.dumps(
                    {
                        "id": "chatcmpl-fake",
                        "object": "chat.completion",
                        "created": 0,
                        "model": body.get("model", "fake"),
                        "choices": [
                            {
                                "index": 0,
                                "finish_reason": finish,
                                "message": {"role": "assistant", "content": text},
                            }
                        ],
                        "usage": {"prompt_tokens": 50, "completion_tokens": 20, "total_tokens": 70},
                    }
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                with server.lock:
                    server.answered[key] += 1

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def __enter__(self) -> FakeOpenAI:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    @property
    def total(self) -> int:
        return sum(self.requests.values())
