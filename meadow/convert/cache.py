"""A content-addressed SQLite cache of LLM answers.

Every request is keyed by a hash of the backend identity (model), the messages and the
generation parameters. An answer is written as soon as it arrives (WAL mode, one small
transaction per answer), so a killed build resumes without asking twice; in replay mode a
miss is an error, so a build can be reproduced from a shipped cache without any key.
No API key or other secret is ever part of a request as stored here.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from pathlib import Path
from typing import Any

from meadow.convert.backend import Completion, GenParams, Message
from meadow.errors import MeadowError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
    key TEXT PRIMARY KEY,
    backend TEXT NOT NULL,
    request TEXT NOT NULL,
    text TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    finish_reason TEXT,
    created REAL NOT NULL
)
"""


def request_key(backend: str, messages: list[Message], params: GenParams) -> tuple[str, str]:
    """(key, canonical request JSON) of one request."""
    request = json.dumps(
        {"backend": backend, "messages": messages, "params": params.model_dump(mode="json")},
        ensure_ascii=False,
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(request.encode("utf-8")).hexdigest(), request


class ReplayMiss(MeadowError):
    """Replay mode met a request that the cache does not hold."""


class AnswerCache:
    def __init__(self, path: str | Path, *, replay: bool = False):
        self.path = Path(path)
        self.replay = replay
        if replay and not self.path.exists():
            raise MeadowError(f"{self.path}: replay needs an existing LLM cache, and there is none")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(_SCHEMA)
        except sqlite3.DatabaseError as err:
            raise MeadowError(f"{self.path}: not a usable LLM cache ({err})") from None

    def get(self, key: str) -> Completion | None:
        return _get(self._db, key)

    def put(self, key: str, backend: str, request: str, completion: Completion) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO answers VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                key,
                backend,
                request,
                completion.text,
                completion.prompt_tokens,
                completion.completion_tokens,
                completion.finish_reason,
                time.time(),
            ),
        )

    def merge(self, other: str | Path) -> int:
        """Add the answers of the cache file ``other`` that this one lacks; returns how many."""
        before = len(self)
        self._db.execute("ATTACH DATABASE ? AS other", (str(other),))
        try:
            self._db.execute("INSERT OR IGNORE INTO answers SELECT * FROM other.answers")
        finally:
            self._db.execute("DETACH DATABASE other")
        return len(self) - before

    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM answers").fetchone()[0])

    def stats(self) -> dict[str, Any]:
        n, p, c = self._db.execute(
            "SELECT COUNT(*), COALESCE(SUM(prompt_tokens), 0), COALESCE(SUM(completion_tokens), 0) "
            "FROM answers"
        ).fetchone()
        return {"answers": n, "prompt_tokens": p, "completion_tokens": c}

    def close(self) -> None:
        self._db.close()


def _get(db: sqlite3.Connection, key: str) -> Completion | None:
    row = db.execute(
        "SELECT text, prompt_tokens, completion_tokens, finish_reason FROM answers WHERE key = ?", (key,)
    ).fetchone()
    if row is None:
        return None
    return Completion(text=row[0], prompt_tokens=row[1], completion_tokens=row[2], finish_reason=row[3])


class ChunkCache(AnswerCache):
    """The cache of one rephrasing task on a worker (meadow.convert.distributed): answers are read
    from the build's main cache (opened read-only, never written) and then from this task's own
    file ``own``, where new answers go. The driver merges ``own`` into the main cache afterwards.

    ``path`` names the main cache (what a replay miss reports); ``own`` is the task's file.
    """

    def __init__(self, main: str | Path, own: str | Path, *, replay: bool = False):
        main = Path(main)
        if replay and not main.exists():
            raise MeadowError(f"{main}: replay needs an existing LLM cache, and there is none")
        super().__init__(own)
        self.own, self.path, self.replay = Path(own), main, replay
        self._main: sqlite3.Connection | None = None
        if main.exists():
            uri = f"{main.resolve().as_uri()}?mode=ro"
            try:
                self._main = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
            except sqlite3.DatabaseError as err:
                raise MeadowError(f"{main}: not a usable LLM cache ({err})") from None

    def get(self, key: str) -> Completion | None:
        hit = _get(self._main, key) if self._main is not None else None
        return hit if hit is not None else super().get(key)

    def close(self) -> None:
        if self._main is not None:
            self._main.close()
        super().close()
