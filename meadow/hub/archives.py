"""Archives of `meadow fetch`: the regular files of a tar (any compression) or zip, unpacked safely.

A member with an absolute path or '..', a link or a device is never written; every file goes
through a temporary sibling (``io.atomic_file``), so a killed run leaves no half-written member.
"""

from __future__ import annotations

import fnmatch
import logging
import re
import shutil
import tarfile
import zipfile
from pathlib import Path
from typing import IO, Any

from meadow.hub.errors import FetchError
from meadow.hub.http import CHUNK
from meadow.io import atomic_file, file_info

log = logging.getLogger(__name__)


def _member_path(name: str) -> str | None:
    """A safe relative POSIX path for an archive member, or None (absolute, '..', empty)."""
    name = name.replace("\\", "/")
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        return None
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        return None
    return "/".join(parts)


def extract(archive: Path, into: Path, members: list[str]) -> dict[str, dict[str, Any]]:
    """Unpack the regular files of a tar (any compression) or zip archive into ``into``.

    Only members matching one of ``members`` (fnmatch globs; all when empty). Members with
    absolute paths or '..', links and devices are skipped. Each file is written to a
    temporary sibling and renamed into place. Returns ``{relative path: {bytes, sha256}}``.
    """
    out: dict[str, dict[str, Any]] = {}
    skipped = 0

    def wanted(rel: str) -> bool:
        return not members or any(fnmatch.fnmatchcase(rel, p) for p in members)

    def write(rel: str, stream: IO[bytes]) -> None:
        target = into / rel
        with atomic_file(target, "wb") as f:
            shutil.copyfileobj(stream, f, CHUNK)
        out[rel] = file_info(target)

    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                for info in zf.infolist():
                    rel = _member_path(info.filename)
                    if info.is_dir():
                        continue
                    if rel is None:
                        skipped += 1
                        continue
                    if wanted(rel):
                        with zf.open(info) as stream:
                            write(rel, stream)
        elif tarfile.is_tarfile(archive):
            with tarfile.open(archive, "r:*") as tf:
                for member in tf:
                    rel = _member_path(member.name)
                    if member.isdir():
                        continue
                    if rel is None or not member.isfile():
                        skipped += 1
                        continue
                    if wanted(rel):
                        stream = tf.extractfile(member)
                        if stream is not None:
                            with stream:
                                write(rel, stream)
        else:
            raise FetchError(f"{archive}: 'extract' is set but this is not a tar or zip archive")
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as err:
        raise FetchError(f"{archive}: cannot unpack: {err}") from None
    if skipped:
        log.warning("%s: skipped %d unsafe members (links, absolute paths or '..')", archive.name, skipped)
    if not out:
        which = f" matching {members}" if members else ""
        raise FetchError(f"{archive}: no file{which} in the archive")
    return out
