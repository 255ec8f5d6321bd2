"""Files only a person can download (Google Drive, AnkiWeb, a wiki export): ``manual`` fetch entries.

`meadow fetch` says where to get such a file and where to put it; once it is there, the file
is verified against the recipe or the lock, or recorded (trust on first use). A glob entry
(several Anki decks) records every matching file.
"""

from __future__ import annotations

import glob
import os
import posixpath
from pathlib import Path
from typing import Any

from meadow.hub.errors import FetchError
from meadow.hub.lock import LOCK_NAME, Lock, expected_file, lock_entry
from meadow.io import file_info
from meadow.schemas.fetch import ManualFetch, is_glob


def manual_message(fe: ManualFetch, dest: Path) -> str:
    """Where to get the file of ``fe`` and where to put it (``dest``, a glob for several files)."""
    how = f"{fe.instructions.strip().rstrip('.')}. " if fe.instructions else ""
    if is_glob(fe.file):
        where = f"put the files in {dest.parent}{os.sep} (matching {posixpath.basename(fe.file)})"
    else:
        where = f"put it at {dest}"
    return f"manual download needed: {how}Get it from {fe.url} and {where}; `meadow fetch` then records it"


def placed(dest: Path) -> list[Path]:
    """The files placed by hand at ``dest`` (a path or a glob), sorted."""
    return sorted(Path(p) for p in glob.glob(str(dest)) if Path(p).is_file())


def check_manual(
    key: str, path: Path, fe: ManualFetch, lock: Lock, source: str
) -> tuple[dict[str, Any], bool]:
    """Verify a file placed by hand against the recipe or the lock, else record it under ``key``;
    returns its ``file_info`` and whether it was recorded just now."""
    recorded = lock.get(key, fe.origin())
    size, sha = expected_file(fe, recorded)
    info = file_info(path)
    if (size is not None and info["bytes"] != size) or (sha is not None and info["sha256"] != sha):
        raise FetchError(
            f"{path}: does not match {'the recipe' if fe.sha256 or fe.size is not None else LOCK_NAME} "
            f"(size {info['bytes']:,}, sha256 {info['sha256']}; expected size {size}, sha256 {sha}). "
            f"Put the right file there (from {fe.url}), or remove its entry from {LOCK_NAME} if the "
            "upstream file changed on purpose."
        )
    if recorded is None or recorded.get("sha256") != info["sha256"]:
        lock.put(key, lock_entry(source, fe, info))
        return info, True
    return info, False
