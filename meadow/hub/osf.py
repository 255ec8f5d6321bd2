"""OSF files for `meadow fetch`: found by name in a project's storage through the OSF API.

OSF stores each file's sha256, which the download is verified against. ``MEADOW_OSF_API``
points at another API root (a mirror, or a test server).
"""

from __future__ import annotations

import os
import posixpath
from pathlib import Path

from meadow.hub.errors import FetchError
from meadow.hub.http import Net, Resolved, get_json
from meadow.schemas.fetch import OsfFetch

OSF_API = "https://api.osf.io/v2"


def osf_api() -> str:
    return os.environ.get("MEADOW_OSF_API", OSF_API).rstrip("/")


def resolve_osf(fe: OsfFetch, net: Net, dest: Path) -> Resolved:
    """Walk the project's osfstorage listing (pages and folders, bounded) for the file: its
    download link, size and sha256; ``dest`` is named in errors."""
    target = fe.file.strip("/")
    name = posixpath.basename(target)
    queue: list[tuple[str, int]] = [(f"{osf_api()}/nodes/{fe.project}/files/osfstorage/", 0)]
    seen: list[str] = []
    requests = 0
    while queue:
        url, depth = queue.pop(0)
        while url and requests < 200:
            requests += 1
            page = get_json(url, net, f"OSF project {fe.project}")
            for item in page.get("data", []):
                attrs = item.get("attributes", {})
                path = str(attrs.get("materialized_path") or attrs.get("name") or "").strip("/")
                if attrs.get("kind") == "folder":
                    related = (
                        item.get("relationships", {}).get("files", {}).get("links", {}).get("related", {})
                    )
                    href = related.get("href") if isinstance(related, dict) else related
                    if href and depth < 8:
                        queue.append((href, depth + 1))
                    continue
                seen.append(path)
                if attrs.get("name") == name and ("/" not in target or path == target):
                    link = item.get("links", {}).get("download")
                    if not link:
                        raise FetchError(f"osf.io/{fe.project}: {path} has no download link")
                    hashes = (attrs.get("extra") or {}).get("hashes") or {}
                    return Resolved(link, size=attrs.get("size"), sha256=hashes.get("sha256"))
            url = (page.get("links") or {}).get("next")
    shown = ", ".join(seen[:10]) + (f" ... ({len(seen)} files)" if len(seen) > 10 else "")
    raise FetchError(
        f"osf.io/{fe.project} has no file {fe.file!r} (files there: {shown or 'none'}); download it by "
        f"hand from {fe.page()} and put it at {dest}"
    )
