"""``<raw_dir>/sources.lock``: what every fetched raw file is, so later fetches verify against it.

Per file, keyed ``<source>/<path>``: its origin, size and sha256 (and the Hub commit, and the
archive members unpacked from it). A file nothing else vouches for is trusted on first use and
recorded; a Hub branch stays pinned to the commit first fetched.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from meadow.hub.errors import FetchError
from meadow.io import atomic_write_text
from meadow.schemas.fetch import FetchEntry

LOCK_NAME = "sources.lock"


class Lock:
    """``sources.lock``: per raw file (keyed ``<source>/<path>``), its origin, size and sha256."""

    VERSION = 1

    def __init__(self, path: Path):
        self.path = path
        self.files: dict[str, dict[str, Any]] = {}
        if path.exists():
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
                files = data["files"]
                if not isinstance(files, dict):
                    raise TypeError("'files' is not a mapping")
            except (OSError, ValueError, KeyError, TypeError) as err:
                raise FetchError(
                    f"{path}: not a meadow lock file ({err}); fix it or delete it (every file is then "
                    "hashed and recorded again)"
                ) from None
            self.files = files

    def get(self, key: str, origin: str) -> dict[str, Any] | None:
        """The entry of ``key`` if it was recorded from the same origin (else it is stale)."""
        entry = self.files.get(key)
        return entry if entry and entry.get("origin") == origin else None

    def put(self, key: str, entry: dict[str, Any]) -> None:
        self.files[key] = entry
        self.save()

    def save(self) -> None:
        text = json.dumps({"version": self.VERSION, "files": dict(sorted(self.files.items()))}, indent=2)
        atomic_write_text(self.path, text + "\n")


def lock_entry(source: str, fe: FetchEntry, info: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """The lock entry of a file of ``source`` fetched through ``fe``, with its ``file_info``."""
    return {
        "source": source,
        "kind": fe.kind,
        "origin": fe.origin(),
        "page": fe.page(),
        "size": info["bytes"],
        "sha256": info["sha256"],
        "recorded_at": datetime.now(timezone.utc).replace(microsecond=0).isoformat(),
        **extra,
    }


def expected_file(fe: FetchEntry, recorded: dict[str, Any] | None) -> tuple[int | None, str | None]:
    """The size and sha256 a file must have: the recipe's, else those the lock recorded."""
    size = fe.size if fe.size is not None else (recorded or {}).get("size")
    return size, fe.sha256 or (recorded or {}).get("sha256")
