"""HTTP for `meadow fetch`: an opener that follows redirects by hand, bounded retries, a resumable download.

``download`` writes ``<file>.part`` with HTTP Range resume (a dropped connection or a killed run
continues where it stopped; a strong ETag or Last-Modified, kept in ``<file>.part.json``, makes
sure a changed file is never stitched onto an old start), retries dropped connections, timeouts,
429 and 5xx with backoff (Retry-After honoured), verifies size and sha256, and only then renames
the ``.part`` into place. A host that cannot be reached at all (its name does not resolve,
nothing listens on the port, no route to it) is not retried: that is no network, a wrong URL or
a server that is down, said at once rather than after a minute of backoff. The ``.part`` is not
an ``io.atomic_file`` temporary: it must keep its name and outlive a failed run, to be resumed.
"""

from __future__ import annotations

import contextlib
import email.utils
import errno
import json
import logging
import os
import re
import socket
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.client import HTTPResponse, IncompleteRead
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

from tqdm import tqdm

from meadow import __version__
from meadow.hub.errors import FetchError
from meadow.hub.lock import LOCK_NAME
from meadow.io import atomic_write_text, file_info
from meadow.schemas.fetch import SHA256

log = logging.getLogger(__name__)

PART = ".part"
USER_AGENT = f"meadow/{__version__} (+https://github.com/kbressem/medAlpaca data rebuild)"
RETRY_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
CHUNK = 1 << 20
_SHA256 = re.compile(SHA256)

Origin = tuple[str, str, int]
"""(scheme, host, port): where an ``Authorization`` header may go."""


@dataclass(frozen=True)
class Net:
    """Network settings: bounded retries with exponential backoff."""

    retries: int = 5
    backoff: float = 1.0
    max_backoff: float = 60.0
    timeout: float = 60.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        if retry_after is not None:
            return min(retry_after, self.max_backoff)
        return min(self.backoff * 2 ** (attempt - 1), self.max_backoff)


@dataclass
class Resolved:
    """Where an upstream file is downloaded from, and what its origin vouches for."""

    url: str
    headers: dict[str, str] = field(default_factory=dict)
    auth_origin: Origin | None = None
    """The only origin that may see the ``Authorization`` header (never a CDN it redirects to)."""
    size: int | None = None
    sha256: str | None = None
    """What the origin vouches for; anything but a sha256 (a git ETag, a missing hash) is dropped."""
    extra: dict[str, Any] = field(default_factory=dict)
    """What goes into the file's lock entry besides size and sha256 (the Hub commit)."""

    def __post_init__(self) -> None:
        if not (isinstance(self.sha256, str) and _SHA256.match(self.sha256)):
            self.sha256 = None


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Redirects are followed by hand, so an Authorization header never leaves its origin."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: ANN001, ANN201
        return None


_OPENER = urllib.request.build_opener(_NoRedirect())
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


def url_origin(url: str) -> Origin:
    parts = urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme, 0)
    return parts.scheme, (parts.hostname or "").lower(), parts.port or default


def open_url(
    url: str,
    headers: dict[str, str],
    timeout: float,
    *,
    method: str = "GET",
    auth_origin: Origin | None = None,
    max_redirects: int = 10,
) -> tuple[HTTPResponse, str]:
    """Open ``url`` following up to ``max_redirects`` redirects; returns the response and final URL.

    The ``Authorization`` header is sent only to ``auth_origin`` (never to a CDN a Hub
    redirects to). HTTP errors are raised as ``urllib.error.HTTPError`` (closed).
    """
    for _ in range(max_redirects + 1):
        sent = {
            k: v for k, v in headers.items() if k.lower() != "authorization" or url_origin(url) == auth_origin
        }
        sent.setdefault("User-Agent", USER_AGENT)
        request = urllib.request.Request(url, headers=sent, method=method)
        try:
            return _OPENER.open(request, timeout=timeout), url
        except urllib.error.HTTPError as err:
            location = err.headers.get("Location")
            err.close()
            if err.code in _REDIRECTS and location:
                url = urljoin(url, location)
                continue
            raise
    raise FetchError(f"{url}: more than {max_redirects} redirects")


def _retry_after(headers: Any) -> float | None:
    value = headers.get("Retry-After") if headers is not None else None
    if not value:
        return None
    if value.strip().isdigit():
        return float(value)
    with contextlib.suppress(TypeError, ValueError):
        when = email.utils.parsedate_to_datetime(value)
        return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())
    return None


def status_error(url: str, code: int, dest: Path, page: str) -> FetchError:
    if code in (401, 403):
        return FetchError(
            f"HTTP {code}: access to {url} was refused. The file needs a login or is no longer "
            f"public: download it yourself from {page} and put it at {dest}; `meadow fetch` then "
            "verifies and records it."
        )
    if code in (404, 410):
        return FetchError(
            f"HTTP {code}: {url} was not found. The upstream file moved or the recipe's URL is "
            f"wrong: check {page} and fix the source's fetch entry in the recipe, or put the file "
            f"at {dest} by hand."
        )
    return FetchError(f"HTTP {code} from {url}")


_TRANSIENT = (urllib.error.URLError, ConnectionError, TimeoutError, IncompleteRead, OSError)
_NO_ROUTE = frozenset({errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ENETDOWN})


def unreachable(err: BaseException, url: str) -> str | None:
    """``cannot reach <host>: ...`` when ``err`` (or an error it wraps: urllib's ``reason``, the
    cause of an httpx error) says the host cannot be reached at all; None for anything else.

    A name that does not resolve, a refused connection and no route to the host are not
    retried: a few seconds later they are just as true, and the usual cause is no network."""
    parts = urlsplit(url)
    host = parts.hostname or url
    seen: set[int] = set()
    todo: list[BaseException | None] = [err]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, socket.gaierror):
            return f"cannot reach {host}: its name does not resolve ({e.strerror or e}); no network?"
        if isinstance(e, ConnectionRefusedError):
            port = parts.port or {"http": 80, "https": 443}.get(parts.scheme, "?")
            return f"cannot reach {host}: nothing answers on port {port} (connection refused); no network?"
        if isinstance(e, OSError) and e.errno in _NO_ROUTE:
            return f"cannot reach {host}: {e.strerror or e}; no network?"
        reason = getattr(e, "reason", None)
        todo += [e.__cause__, e.__context__, reason if isinstance(reason, BaseException) else None]
    return None


def get_json(url: str, net: Net, what: str) -> Any:
    """GET a JSON document with the same bounded retries as downloads."""
    attempt = 0
    while True:
        try:
            response, _ = open_url(url, {"Accept": "application/json"}, net.timeout)
            with response:
                return json.loads(response.read().decode("utf-8"))
        except urllib.error.HTTPError as err:
            if err.code not in RETRY_STATUS:
                raise FetchError(f"{what}: HTTP {err.code} from {url}") from None
            attempt += 1
            if attempt > net.retries:
                raise FetchError(f"{what}: HTTP {err.code} from {url} after {net.retries} retries") from None
            time.sleep(net.delay(attempt, _retry_after(err.headers)))
        except ValueError as err:
            raise FetchError(f"{what}: {url} did not return JSON ({err})") from None
        except _TRANSIENT as err:
            if plain := unreachable(err, url):
                raise FetchError(f"{what}: {plain}") from None
            attempt += 1
            if attempt > net.retries:
                raise FetchError(f"{what}: cannot reach {url}: {err}") from None
            time.sleep(net.delay(attempt))


def _parse_content_range(value: str | None) -> tuple[int | None, int | None]:
    """``bytes 100-199/200`` -> (100, 200); ``bytes */200`` -> (None, 200)."""
    m = re.match(r"bytes\s+(?:(\d+)-\d+|\*)/(\d+|\*)", value or "")
    if not m:
        return None, None
    start = int(m.group(1)) if m.group(1) else None
    total = int(m.group(2)) if m.group(2) != "*" else None
    return start, total


def download(
    url: str,
    dest: Path,
    *,
    size: int | None = None,
    sha256: str | None = None,
    headers: dict[str, str] | None = None,
    auth_origin: Origin | None = None,
    net: Net = Net(),
    progress: bool = True,
    label: str = "",
    page: str = "",
) -> dict[str, Any]:
    """Download ``url`` to ``dest`` through ``dest.part``, resumably; verify; rename into place.

    Returns ``{"bytes", "sha256"}`` of the file. A size or sha256 mismatch removes the
    partial file and raises FetchError; so do 401/403/404 (with what to do). Connection
    errors, timeouts, 429 and 5xx are retried ``net.retries`` times in a row with backoff,
    the count starting again after every attempt that got data (bounded overall).
    """
    headers = dict(headers or {})
    headers.setdefault("Accept-Encoding", "identity")
    part = dest.with_name(dest.name + PART)
    meta = dest.with_name(dest.name + PART + ".json")  # the validator that makes a resume safe
    page = page or url
    validator = _read_validator(meta, url)
    failures = 0
    attempts = 0
    max_attempts = 20 * (net.retries + 1)
    bar = tqdm(
        desc=label or dest.name,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        total=size,
        disable=None if progress else True,
        leave=False,
    )
    try:
        while True:
            attempts += 1
            have = part.stat().st_size if part.exists() else 0
            if size is not None and have > size:
                part.unlink()
                have = 0
            if size is not None and have == size and (have > 0 or part.exists()):
                break  # complete from an earlier run that stopped before the rename
            request_headers = dict(headers)
            if have:
                request_headers["Range"] = f"bytes={have}-"
                if validator:
                    request_headers["If-Range"] = validator
            got = 0
            try:
                response, final = open_url(url, request_headers, net.timeout, auth_origin=auth_origin)
                with response:
                    total = _start(response, have, part)
                    if response.status == 200:
                        have = 0
                    if size is not None and total is not None and total != size:
                        raise _Mismatch(
                            f"the server's size of {final} is {total:,} bytes, not the expected {size:,}"
                        )
                    if total is not None:
                        bar.total = total
                    bar.n = have
                    bar.refresh()
                    dest.parent.mkdir(parents=True, exist_ok=True)  # only once the server answered
                    validator = _remember_validator(meta, url, response.headers)
                    with open(part, "ab") as f:
                        while block := response.read(CHUNK):
                            f.write(block)
                            got += len(block)
                            bar.update(len(block))
                        f.flush()
                        os.fsync(f.fileno())
                    if total is not None and have + got < total:
                        raise ConnectionError(f"connection closed after {have + got:,} of {total:,} bytes")
                break
            except urllib.error.HTTPError as err:
                if err.code == 416 and have:
                    _, total = _parse_content_range(err.headers.get("Content-Range"))
                    if total == have and (size is None or size == have):
                        break  # the .part was already complete
                    part.unlink(missing_ok=True)  # stale partial file: start again
                    continue
                if err.code not in RETRY_STATUS:
                    raise status_error(url, err.code, dest, page) from None
                failures += 1
                if failures > net.retries or attempts >= max_attempts:
                    raise FetchError(
                        f"{url}: HTTP {err.code} after {net.retries} retries; run `meadow fetch` again later"
                    ) from None
                wait = net.delay(failures, _retry_after(err.headers))
                log.warning("%s: HTTP %d, retrying in %.1f s", url, err.code, wait)
                time.sleep(wait)
            except _Mismatch:
                raise
            except _TRANSIENT as err:
                if plain := unreachable(err, url):
                    kept = f"; {part} keeps the {have:,} bytes received" if have else ""
                    raise FetchError(f"{url}: {plain}{kept}") from None
                failures = 0 if got else failures + 1
                if failures > net.retries or attempts >= max_attempts:
                    kept = (
                        f"; {part} keeps the {part.stat().st_size:,} bytes received" if part.exists() else ""
                    )
                    raise FetchError(
                        f"{url}: download failed after {net.retries} retries ({err}){kept}: run "
                        "`meadow fetch` again to resume"
                    ) from None
                wait = net.delay(max(failures, 1))
                again = "resuming" if part.exists() and part.stat().st_size else "retrying"
                log.warning("%s: %s; %s in %.1f s", url, err, again, wait)
                time.sleep(wait)
    except _Mismatch as err:
        part.unlink(missing_ok=True)
        meta.unlink(missing_ok=True)
        raise FetchError(f"{dest}: {err}; the partial file was removed") from None
    finally:
        bar.close()
    info = verify(part, size=size, sha256=sha256, shown=dest, origin=url)
    os.replace(part, dest)
    meta.unlink(missing_ok=True)
    return info


class _Mismatch(Exception):
    pass


def _start(response: HTTPResponse, have: int, part: Path) -> int | None:
    """Check how the server answered a (range) request; returns the file's total size if known."""
    if response.status == 206:
        start, total = _parse_content_range(response.headers.get("Content-Range"))
        if start != have:
            raise ConnectionError(f"the server resumed at byte {start}, not {have}")
        return total
    if response.status != 200:
        raise ConnectionError(f"unexpected HTTP {response.status}")
    if have:  # the server ignored the range (or the file changed: If-Range): start over
        log.info("%s: the server sent the whole file; starting over", part.name)
        part.unlink(missing_ok=True)
    length = response.headers.get("Content-Length")
    return int(length) if length and length.isdigit() else None


def _read_validator(meta: Path, url: str) -> str | None:
    with contextlib.suppress(OSError, ValueError, KeyError):
        data = json.loads(meta.read_text(encoding="utf-8"))
        if data["url"] == url:
            return data["validator"]
    return None


def _remember_validator(meta: Path, url: str, headers: Any) -> str | None:
    """A strong ETag or a Last-Modified date: If-Range then refuses to resume a changed file."""
    etag = headers.get("ETag")
    value = etag if etag and not etag.startswith("W/") else headers.get("Last-Modified")
    if value:
        atomic_write_text(meta, json.dumps({"url": url, "validator": value}))
    return value


def verify(
    path: Path, *, size: int | None, sha256: str | None, shown: Path, origin: str = ""
) -> dict[str, Any]:
    """Size and sha256 of ``path``; a mismatch with what is expected removes it and raises."""
    info = file_info(path)
    problem = None
    if size is not None and info["bytes"] != size:
        problem = f"size {info['bytes']:,} bytes, expected {size:,}"
    elif sha256 is not None and info["sha256"] != sha256:
        problem = f"sha256 {info['sha256']}, expected {sha256}"
    if problem:
        path.unlink(missing_ok=True)
        path.with_name(path.name + ".json").unlink(missing_ok=True)
        where = f" (from {origin})" if origin else ""
        raise FetchError(
            f"{shown}: checksum mismatch{where}: {problem}. The bad file was removed. If the "
            f"upstream file changed on purpose, remove its entry from {LOCK_NAME} (or fix sha256/size "
            "in the recipe) and fetch again."
        )
    return info
