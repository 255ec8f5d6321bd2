"""`meadow fetch`: download exactly what a recipe needs into ``<raw_dir>/<source>/``.

Every source of a recipe lists its upstream files in ``fetch`` (see meadow.schemas.fetch), and so
does every evaluation set of its ``benchmarks:`` (into ``<raw_dir>/<benchmark>/``, after the
sources). For each file:

1. a file already in place is checked against its expected size and sha256 (from the
   recipe, else from ``<raw_dir>/sources.lock``) and skipped when it matches; a file that
   does not match is downloaded again; a file in place that nothing vouches for yet is
   hashed and recorded (trust on first use);
2. otherwise, where another source or benchmark already fetched the same upstream file (same
   origin, its sha256 checked against the lock), that copy is hard-linked (or copied) into
   place; otherwise it is downloaded into ``<file>.part`` with HTTP Range resume (a dropped
   connection or a killed run continues where it stopped), with bounded retries and
   backoff on connection errors, timeouts, 429 and 5xx (Retry-After honoured);
3. the finished ``.part`` is verified by size and sha256 (the recipe's, the lock's, or
   the one the server vouches for: the Hub's LFS ETag, OSF's stored hash); a mismatch is
   an error and the bad file is removed; only a good file is renamed into place;
4. size, sha256, origin (and the Hub commit) go into ``sources.lock``, which later
   fetches verify against and which pins a Hub branch to the commit first fetched;
5. archives are unpacked (``extract``, optionally only some ``members``), member by member
   through temporary files, with the members' sizes and hashes in the lock;
6. ``<raw_dir>/<source>/SOURCE.md`` records the source's license, citation and the
   origin of every file.

Hugging Face files are resolved with huggingface_hub (revision -> commit, size, LFS
sha256, the CDN location; ``HF_ENDPOINT`` honoured, token from ``HF_TOKEN`` or the saved
login) and then downloaded by the same resumable downloader as plain URLs: the Hub's own
``hf_hub_download`` does not resume across runs, nor verify the content hash. Kaggle
files go through the ``kaggle`` package, imported only when needed (it authenticates and
prints at import time). Files that only a person can download (Google Drive, AnkiWeb,
a wiki export) are ``manual`` entries: fetch says where to get them and where to put them.
"""

from __future__ import annotations

import contextlib
import email.utils
import fnmatch
import glob
import io
import json
import logging
import os
import posixpath
import re
import shutil
import tarfile
import time
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.client import HTTPResponse, IncompleteRead
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

from tqdm import tqdm

from meadow import __version__, sources
from meadow.errors import MeadowError
from meadow.io import file_info
from meadow.schemas.benchmark import BenchmarkEntry
from meadow.schemas.fetch import (
    FetchEntry,
    HfFetch,
    KaggleFetch,
    ManualFetch,
    OsfFetch,
    UrlFetch,
    is_glob,
)
from meadow.schemas.recipe import SourceEntry, benchmark_paths, load_recipe, resolve_paths

log = logging.getLogger(__name__)

LOCK_NAME = "sources.lock"
SOURCE_CARD = "SOURCE.md"
PART = ".part"
USER_AGENT = f"meadow/{__version__} (+https://github.com/kbressem/medAlpaca data rebuild)"
OSF_API = "https://api.osf.io/v2"
RETRY_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
CHUNK = 1 << 20
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")


class FetchError(MeadowError):
    """A download that failed, with what to do about it."""


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


# --------------------------------------------------------------------------- the lock


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
        self.path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps({"version": self.VERSION, "files": dict(sorted(self.files.items()))}, indent=2)
        _write_atomic(self.path, text + "\n")


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


# --------------------------------------------------------------------------- HTTP


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Redirects are followed by hand, so an Authorization header never leaves its origin."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: ANN001, ANN201
        return None


_OPENER = urllib.request.build_opener(_NoRedirect())
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


def _origin(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme, 0)
    return parts.scheme, (parts.hostname or "").lower(), parts.port or default


def _open(
    url: str,
    headers: dict[str, str],
    timeout: float,
    *,
    method: str = "GET",
    auth_origin: tuple[str, str, int] | None = None,
    max_redirects: int = 10,
) -> tuple[HTTPResponse, str]:
    """Open ``url`` following up to ``max_redirects`` redirects; returns the response and final URL.

    The ``Authorization`` header is sent only to ``auth_origin`` (never to a CDN a Hub
    redirects to). HTTP errors are raised as ``urllib.error.HTTPError`` (closed).
    """
    for _ in range(max_redirects + 1):
        sent = {
            k: v for k, v in headers.items() if k.lower() != "authorization" or _origin(url) == auth_origin
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


def _status_error(url: str, code: int, dest: Path, page: str) -> FetchError:
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


def _get_json(url: str, net: Net, what: str) -> Any:
    """GET a JSON document with the same bounded retries as downloads."""
    attempt = 0
    while True:
        try:
            response, _ = _open(url, {"Accept": "application/json"}, net.timeout)
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
    auth_origin: tuple[str, str, int] | None = None,
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
    dest.parent.mkdir(parents=True, exist_ok=True)
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
                response, final = _open(url, request_headers, net.timeout, auth_origin=auth_origin)
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
                    raise _status_error(url, err.code, dest, page) from None
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
                log.warning("%s: %s; resuming in %.1f s", url, err, wait)
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
        _write_atomic(meta, json.dumps({"url": url, "validator": value}))
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


# --------------------------------------------------------------------------- archives


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
    temporary name and renamed into place. Returns ``{relative path: {bytes, sha256}}``.
    """
    out: dict[str, dict[str, Any]] = {}
    skipped = 0

    def wanted(rel: str) -> bool:
        return not members or any(fnmatch.fnmatchcase(rel, p) for p in members)

    def write(rel: str, stream: io.BufferedIOBase | Any) -> None:
        target = into / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + PART)
        with open(tmp, "wb") as f:
            shutil.copyfileobj(stream, f, CHUNK)
        os.replace(tmp, target)
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


# --------------------------------------------------------------------------- fetch


@dataclass
class Item:
    """One fetch entry of one source and what happened to it."""

    source: str
    entry: FetchEntry | None
    dest: Path
    key: str
    status: str = ""  # ok | downloaded | recorded | manual | error | would download | present | no entry
    detail: str = ""
    size: int | None = None

    @property
    def needs_action(self) -> bool:
        return self.status in ("manual", "error", "no entry")


@dataclass
class FetchReport:
    raw_dir: Path
    lock_path: Path
    items: list[Item] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    dry_run: bool = False

    @property
    def errors(self) -> list[Item]:
        return [i for i in self.items if i.status == "error"]

    @property
    def manual(self) -> list[Item]:
        return [i for i in self.items if i.status in ("manual", "no entry")]


def fetch(
    recipe_path: str | Path,
    *,
    only: list[str] | None = None,
    raw_dir: str | Path = "data/raw",
    dry_run: bool = False,
    progress: bool = True,
    net: Net | None = None,
) -> FetchReport:
    """Fetch the raw files of every source and benchmark (or of ``only``) of a recipe into ``raw_dir``.

    An entry that fails does not stop the others; the report lists errors and the files
    that need a manual download. ``dry_run`` lists what would be downloaded, with sizes
    where known (from the recipe, the lock, or a HEAD/metadata request), and writes nothing.
    Benchmarks (the recipe's ``benchmarks:``, evaluation sets) come after the sources, into
    ``raw_dir/<benchmark>/`` the same way.
    """
    net = net or Net()
    recipe = load_recipe(recipe_path)
    entries: dict[str, SourceEntry | BenchmarkEntry] = {**recipe.sources, **recipe.benchmarks}
    names = list(only) if only else list(entries)
    unknown = [n for n in names if n not in entries]
    if unknown:
        raise FetchError(
            f"{recipe_path}: no source or benchmark named {', '.join(map(repr, unknown))}; the recipe's "
            f"sources: {', '.join(recipe.sources)}"
            + (f"; benchmarks: {', '.join(recipe.benchmarks)}" if recipe.benchmarks else "")
        )
    raw = Path(raw_dir)
    lock = Lock(raw / LOCK_NAME)
    report = FetchReport(raw_dir=raw, lock_path=lock.path, dry_run=dry_run)
    for name in names:
        entry = entries[name]
        folder = raw / name
        items: list[Item] = []
        if not entry.fetch:
            items.append(_no_entry(name, entry, folder))
        for fe in entry.fetch:
            dest = folder / fe.destination()
            item = Item(name, fe, dest, f"{name}/{fe.destination()}")
            try:
                if dry_run:
                    _plan(item, lock, net)
                else:
                    _fetch_one(item, lock, net, progress)
            except MeadowError as err:
                item.status, item.detail = "error", str(err)
            items.append(item)
        report.items.extend(items)
        if dry_run or not entry.fetch:
            continue
        _write_source_card(folder, name, entry, lock)
        if not any(i.needs_action for i in items):
            try:
                _paths(name, entry)
            except MeadowError:
                report.warnings.append(
                    f"{_what(entry)} {name!r}: fetched into {folder}, but the recipe's path "
                    f"{entry.path!r} matches nothing (relative to {Path.cwd()}): fix the path or "
                    "the fetch entries' 'to'"
                )
    return report


def _what(entry: SourceEntry | BenchmarkEntry) -> str:
    return "benchmark" if isinstance(entry, BenchmarkEntry) else "source"


def _paths(name: str, entry: SourceEntry | BenchmarkEntry) -> list[Path]:
    """The files a source's or benchmark's path matches (relative to the working directory)."""
    if isinstance(entry, BenchmarkEntry):
        return benchmark_paths(name, entry, Path.cwd())
    return resolve_paths(name, entry)


def _no_entry(name: str, entry: SourceEntry | BenchmarkEntry, folder: Path) -> Item:
    item = Item(name, None, folder, f"{name}/")
    try:
        paths = _paths(name, entry)
    except MeadowError:
        item.status = "no entry"
        item.detail = (
            f"the recipe has no fetch entry for this {_what(entry)}: put its files where its path "
            f"{entry.path!r} points (DATA_DESCRIPTION.md says where they come from)"
        )
    else:
        item.status, item.detail = "present", f"{len(paths)} file(s), no fetch entry"
    return item


def _fetch_one(item: Item, lock: Lock, net: Net, progress: bool) -> None:
    fe = item.entry
    assert fe is not None
    if isinstance(fe, ManualFetch):
        _fetch_manual(item, fe, lock)
        return
    recorded = lock.get(item.key, fe.origin())
    if (
        isinstance(fe, HfFetch)
        and recorded
        and _COMMIT.match(fe.revision)
        and recorded.get("revision") != fe.revision
    ):
        recorded = None  # the recipe pins another commit
    size = fe.size if fe.size is not None else (recorded or {}).get("size")
    sha = fe.sha256 or (recorded or {}).get("sha256")
    if item.dest.is_file():
        if sha is None and size is None:
            info = file_info(item.dest)
            _record(item, fe, lock, info, recorded, note="recorded (already in place)")
            log.info(
                "%s: already in place; recorded its sha256 %s (trust on first use)", item.key, info["sha256"]
            )
            _maybe_extract(item, fe, lock)
            return
        info = file_info(item.dest)
        if (size is None or info["bytes"] == size) and (sha is None or info["sha256"] == sha):
            if recorded is None:
                _record(item, fe, lock, info, recorded)
            item.status, item.size, item.detail = "ok", info["bytes"], "verified"
            _maybe_extract(item, fe, lock)
            return
        log.warning("%s does not match the expected size/sha256: downloading it again", item.dest)
        item.dest.unlink()
    if _copy_twin(item, fe, lock):
        return
    r_sha = None
    if isinstance(fe, KaggleFetch):
        info, extra = _fetch_kaggle(item, fe, size, sha, progress), {}
    else:
        url, headers, auth, r_size, r_sha, extra = _resolve(fe, recorded, net, item.dest)
        info = download(
            url,
            item.dest,
            size=size if size is not None else r_size,
            sha256=sha or r_sha,
            headers=headers,
            auth_origin=auth,
            net=net,
            progress=progress,
            label=item.key,
            page=fe.page(),
        )
    _record(item, fe, lock, info, None, extra=extra)
    item.status, item.size = "downloaded", info["bytes"]
    if sha:
        item.detail = "verified"
    elif isinstance(fe, (HfFetch, OsfFetch)) and r_sha:
        host = "the Hub" if isinstance(fe, HfFetch) else "OSF"
        item.detail = f"verified against the sha256 {host} gives; recorded in the lock"
    else:
        item.detail = "sha256 recorded in the lock (trust on first use)"
    _maybe_extract(item, fe, lock)


def _record(
    item: Item,
    fe: FetchEntry,
    lock: Lock,
    info: dict[str, Any],
    recorded: dict[str, Any] | None,
    *,
    extra: dict[str, Any] | None = None,
    note: str = "",
) -> None:
    entry = {
        "source": item.source,
        "kind": fe.kind,
        "origin": fe.origin(),
        "page": fe.page(),
        "size": info["bytes"],
        "sha256": info["sha256"],
        "recorded_at": _now(),
        **(extra or {}),
    }
    if recorded and "revision" in recorded and "revision" not in entry:
        entry["revision"] = recorded["revision"]
    lock.put(item.key, entry)
    item.status, item.size = "recorded", info["bytes"]
    item.detail = note or "sha256 recorded in the lock (trust on first use)"


def _twin(item: Item, fe: FetchEntry, lock: Lock, *, verify: bool) -> tuple[str, dict[str, Any]] | None:
    """The lock key and entry of the same upstream file fetched for another source or benchmark,
    still in place (``verify``: its sha256 checked), or None."""
    if is_glob(item.key):
        return None
    raw = lock.path.parent
    for key, rec in sorted(lock.files.items()):
        if key == item.key or rec.get("origin") != fe.origin():
            continue
        if isinstance(fe, HfFetch) and _COMMIT.match(fe.revision) and rec.get("revision") != fe.revision:
            continue
        if (fe.sha256 and rec.get("sha256") != fe.sha256) or (
            fe.size is not None and rec.get("size") != fe.size
        ):
            continue
        path = raw / key
        if not path.is_file() or path.stat().st_size != rec.get("size"):
            continue
        if verify and file_info(path)["sha256"] != rec.get("sha256"):
            continue
        return key, rec
    return None


def _copy_twin(item: Item, fe: FetchEntry, lock: Lock) -> bool:
    """Put the same file fetched for another source or benchmark in place (a hard link, else a
    copy) instead of downloading it again; record and unpack it as a download would be."""
    twin = _twin(item, fe, lock, verify=True)
    if twin is None:
        return False
    key, rec = twin
    source = lock.path.parent / key
    item.dest.parent.mkdir(parents=True, exist_ok=True)
    part = item.dest.with_name(item.dest.name + PART)
    part.unlink(missing_ok=True)
    try:
        os.link(source, part)
    except OSError:
        shutil.copyfile(source, part)
    os.replace(part, item.dest)
    extra = {"revision": rec["revision"]} if "revision" in rec else {}
    info = {"bytes": rec["size"], "sha256": rec["sha256"]}
    _record(
        item,
        fe,
        lock,
        info,
        None,
        extra=extra,
        note=f"the same file as {key} (verified): not downloaded again",
    )
    item.status = "copied"
    log.info("%s: the same file as %s; linked or copied, not downloaded again", item.key, key)
    _maybe_extract(item, fe, lock)
    return True


def _maybe_extract(item: Item, fe: FetchEntry, lock: Lock) -> None:
    if not fe.extract:
        return
    into = _extract_root(item, fe)
    entry = lock.files.get(item.key) or {}
    done = entry.get("extracted", {})
    if done.get("members") and done.get("patterns") == fe.members and _members_ok(into, done["members"]):
        item.detail = _join(item.detail, f"{len(done['members'])} archive members verified")
        return
    members = extract(item.dest, into, fe.members)
    entry["extracted"] = {"into": fe.extract_to or ".", "patterns": fe.members, "members": members}
    lock.put(item.key, entry)
    item.detail = _join(item.detail, f"unpacked {len(members)} files")


def _extract_root(item: Item, fe: FetchEntry) -> Path:
    """The source's folder (``<raw_dir>/<source>/``) joined with ``extract_to``."""
    depth = len(fe.destination().split("/"))
    folder = item.dest
    for _ in range(depth):
        folder = folder.parent
    return folder / fe.extract_to if fe.extract_to else folder


def _members_ok(into: Path, members: dict[str, dict[str, Any]]) -> bool:
    for rel, expected in members.items():
        path = into / rel
        if not path.is_file() or path.stat().st_size != expected["bytes"]:
            return False
        if file_info(path)["sha256"] != expected["sha256"]:
            return False
    return True


def _join(a: str, b: str) -> str:
    return f"{a}; {b}" if a else b


def _manual_message(item: Item, fe: ManualFetch) -> str:
    how = f"{fe.instructions.strip().rstrip('.')}. " if fe.instructions else ""
    if is_glob(fe.file):
        where = f"put the files in {item.dest.parent}{os.sep} (matching {posixpath.basename(fe.file)})"
    else:
        where = f"put it at {item.dest}"
    return f"manual download needed: {how}Get it from {fe.url} and {where}; `meadow fetch` then records it"


def _fetch_manual(item: Item, fe: ManualFetch, lock: Lock) -> None:
    if is_glob(fe.file):
        found = sorted(Path(p) for p in glob.glob(str(item.dest)) if Path(p).is_file())
        if not found:
            item.status, item.detail = "manual", _manual_message(item, fe)
            return
        folder = _extract_root(item, fe)
        for path in found:
            key = f"{item.source}/{path.relative_to(folder).as_posix()}"
            _check_manual(key, path, fe, lock, item.source)
        item.status, item.detail = "ok", f"{len(found)} file(s) placed by hand, verified or recorded"
        item.size = sum(p.stat().st_size for p in found)
        return
    if not item.dest.is_file() and _copy_twin(item, fe, lock):
        return
    if not item.dest.is_file():
        item.status, item.detail = "manual", _manual_message(item, fe)
        return
    info, new = _check_manual(item.key, item.dest, fe, lock, item.source)
    item.status, item.size = ("recorded" if new else "ok"), info["bytes"]
    item.detail = "placed by hand; " + ("sha256 recorded (trust on first use)" if new else "verified")
    _maybe_extract(item, fe, lock)


def _check_manual(
    key: str, path: Path, fe: ManualFetch, lock: Lock, source: str
) -> tuple[dict[str, Any], bool]:
    recorded = lock.get(key, fe.origin())
    size = fe.size if fe.size is not None else (recorded or {}).get("size")
    sha = fe.sha256 or (recorded or {}).get("sha256")
    info = file_info(path)
    if (size is not None and info["bytes"] != size) or (sha is not None and info["sha256"] != sha):
        raise FetchError(
            f"{path}: does not match {'the recipe' if fe.sha256 or fe.size is not None else LOCK_NAME} "
            f"(size {info['bytes']:,}, sha256 {info['sha256']}; expected size {size}, sha256 {sha}). "
            f"Put the right file there (from {fe.url}), or remove its entry from {LOCK_NAME} if the "
            "upstream file changed on purpose."
        )
    if recorded is None or recorded.get("sha256") != info["sha256"]:
        entry = {
            "source": source,
            "kind": "manual",
            "origin": fe.origin(),
            "page": fe.page(),
            "size": info["bytes"],
            "sha256": info["sha256"],
            "recorded_at": _now(),
        }
        lock.put(key, entry)
        return info, True
    return info, False


# --------------------------------------------------------------------------- resolvers


def _resolve(
    fe: FetchEntry, recorded: dict[str, Any] | None, net: Net, dest: Path
) -> tuple[str, dict[str, str], tuple[str, str, int] | None, int | None, str | None, dict[str, Any]]:
    """(download URL, headers, origin that may see the Authorization header, size, sha256, lock extras)."""
    if isinstance(fe, UrlFetch):
        return fe.url, {}, None, None, None, {}
    if isinstance(fe, HfFetch):
        return _resolve_hf(fe, recorded, net, dest)
    if isinstance(fe, OsfFetch):
        url, size, sha = _resolve_osf(fe, net, dest)
        return url, {}, None, size, sha, {}
    raise AssertionError(fe)


def hf_endpoint() -> str:
    """``HF_ENDPOINT`` read now (huggingface_hub reads it once, at import), else the Hub."""
    from huggingface_hub import constants

    return (os.environ.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/")


def hf_token() -> str | None:
    """``HF_TOKEN``, else the token saved by ``hf auth login`` / ``huggingface-cli login``."""
    token = os.environ.get("HF_TOKEN", "").strip()
    if token:
        return token
    from huggingface_hub import get_token

    return get_token()


def _hf_revision(fe: HfFetch, recorded: dict[str, Any] | None) -> str:
    """The recipe's commit; else the commit the lock recorded for this file; else the branch."""
    if _COMMIT.match(fe.revision):
        return fe.revision
    if (
        recorded
        and recorded.get("revision")
        and recorded.get("requested_revision", fe.revision) == fe.revision
    ):
        return recorded["revision"]
    return fe.revision


def _resolve_hf(
    fe: HfFetch, recorded: dict[str, Any] | None, net: Net, dest: Path
) -> tuple[str, dict[str, str], tuple[str, str, int] | None, int | None, str | None, dict[str, Any]]:
    from huggingface_hub import get_hf_file_metadata, hf_hub_url
    from huggingface_hub.utils import build_hf_headers

    endpoint = hf_endpoint()
    revision = _hf_revision(fe, recorded)
    url = hf_hub_url(fe.repo_id, fe.file, repo_type=fe.repo_type, revision=revision, endpoint=endpoint)
    token = hf_token()
    meta = _hf_call(
        lambda: get_hf_file_metadata(url, token=token or False, timeout=net.timeout),
        fe,
        revision,
        dest,
        net,
    )
    if not meta.commit_hash:
        raise FetchError(
            f"{url}: the answer has no X-Repo-Commit header, so it does not come from a Hugging Face "
            f"Hub; check HF_ENDPOINT ({endpoint})"
        )
    headers = build_hf_headers(token=token or False, library_name="meadow", library_version=__version__)
    etag = (meta.etag or "").strip('"')
    sha = etag if _SHA256.match(etag) else None  # an LFS file's ETag is its sha256
    extra = {"revision": meta.commit_hash, "requested_revision": fe.revision, "repo_id": fe.repo_id}
    return meta.location or url, headers, _origin(endpoint), meta.size, sha, extra


def _hf_call(call: Any, fe: HfFetch, revision: str, dest: Path, net: Net) -> Any:
    """Run a huggingface_hub call; turn its errors into FetchErrors that say what to do."""
    from huggingface_hub.errors import (
        EntryNotFoundError,
        FileMetadataError,
        GatedRepoError,
        HfHubHTTPError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    where = f"{fe.repo_type} {fe.repo_id!r} on the Hub ({hf_endpoint()})"
    attempt = 0
    while True:
        try:
            return call()
        except GatedRepoError:
            raise FetchError(
                f"{where} is gated: accept its terms at {fe.page()} while logged in, then set HF_TOKEN "
                "(or run `hf auth login`) and fetch again"
            ) from None
        except RepositoryNotFoundError:
            raise FetchError(
                f"{where} was not found: check repo_id and repo_type in the recipe; if the repository "
                "is private, set HF_TOKEN to a token that can read it (or run `hf auth login`)"
            ) from None
        except RevisionNotFoundError:
            raise FetchError(f"{where} has no revision {revision!r}: fix 'revision' in the recipe") from None
        except EntryNotFoundError:
            raise FetchError(
                f"{where} has no file {fe.file!r} at revision {revision!r}: fix 'file' in the recipe"
            ) from None
        except HfHubHTTPError as err:
            code = err.response.status_code if err.response is not None else None
            if code in (401, 403):
                raise FetchError(
                    f"{where}: HTTP {code}, access refused. Set HF_TOKEN to a token that can read it "
                    f"(or run `hf auth login`), or download {fe.file} from {fe.page()} and put it at {dest}"
                ) from None
            if code not in RETRY_STATUS:
                raise FetchError(f"{where}: {_first_line(err)}") from None
            failure = err
        except FileMetadataError as err:
            raise FetchError(f"{where}: {_first_line(err)} (is HF_ENDPOINT a Hugging Face Hub?)") from None
        except ValueError as err:  # an invalid repo id or revision
            raise FetchError(f"{where}: {_first_line(err)}") from None
        except OSError as err:
            failure = err
        except Exception as err:  # httpx/httpx2 connection errors, whichever the installed hub uses
            if type(err).__module__.split(".")[0] not in ("httpx", "httpx2", "httpcore", "httpcore2"):
                raise
            failure = err
        attempt += 1
        if attempt > net.retries:
            raise FetchError(f"{where}: cannot resolve {fe.file}: {_first_line(failure)}") from None
        time.sleep(net.delay(attempt))


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def osf_api() -> str:
    return os.environ.get("MEADOW_OSF_API", OSF_API).rstrip("/")


def _resolve_osf(fe: OsfFetch, net: Net, dest: Path) -> tuple[str, int | None, str | None]:
    """Walk the project's osfstorage listing (pages and folders, bounded) for the file."""
    target = fe.file.strip("/")
    name = posixpath.basename(target)
    queue: list[tuple[str, int]] = [(f"{osf_api()}/nodes/{fe.project}/files/osfstorage/", 0)]
    seen: list[str] = []
    requests = 0
    while queue:
        url, depth = queue.pop(0)
        while url and requests < 200:
            requests += 1
            page = _get_json(url, net, f"OSF project {fe.project}")
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
                    sha = hashes.get("sha256")
                    return (
                        link,
                        attrs.get("size"),
                        sha if isinstance(sha, str) and _SHA256.match(sha) else None,
                    )
            url = (page.get("links") or {}).get("next")
    shown = ", ".join(seen[:10]) + (f" ... ({len(seen)} files)" if len(seen) > 10 else "")
    raise FetchError(
        f"osf.io/{fe.project} has no file {fe.file!r} (files there: {shown or 'none'}); download it by "
        f"hand from {fe.page()} and put it at {dest}"
    )


KAGGLE_HELP = (
    "no Kaggle credentials. Create an API token at https://www.kaggle.com/settings/api, then either "
    "save the downloaded kaggle.json as ~/.kaggle/kaggle.json (chmod 600; or in the folder that "
    "KAGGLE_CONFIG_DIR names), or set KAGGLE_USERNAME and KAGGLE_KEY, or set KAGGLE_API_TOKEN"
)


def kaggle_api() -> Any:
    """An authenticated ``KaggleApi``. The kaggle package authenticates and prints at import
    time and exits on missing credentials: both are contained here."""
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            from kaggle.api.kaggle_api_extended import KaggleApi
    except ImportError as err:
        raise FetchError(
            f"the kaggle package cannot be imported ({err}): pip install 'meadow[kaggle]'"
        ) from None
    api = KaggleApi()
    try:
        with contextlib.redirect_stdout(out):
            api.authenticate()
    except SystemExit:
        raise FetchError(KAGGLE_HELP) from None
    except Exception as err:
        raise FetchError(f"Kaggle authentication failed: {_first_line(err)}; {KAGGLE_HELP}") from None
    return api


def _fetch_kaggle(
    item: Item, fe: KaggleFetch, size: int | None, sha: str | None, progress: bool
) -> dict[str, Any]:
    """Download through the kaggle package into a hidden staging folder (kaggle resumes there),
    unzip if Kaggle wrapped the file, verify, and rename into place."""
    try:
        api = kaggle_api()
    except FetchError as err:
        raise FetchError(f"{err}; or download {fe.file} from {fe.page()} and put it at {item.dest}") from None
    staging = item.dest.with_name(f".{item.dest.name}.kaggle")
    staging.mkdir(parents=True, exist_ok=True)
    try:
        api.dataset_download_file(fe.dataset, fe.file, path=str(staging), force=False, quiet=not progress)
    except SystemExit:
        raise FetchError(f"Kaggle: {KAGGLE_HELP}") from None
    except Exception as err:
        code = getattr(getattr(err, "response", None), "status_code", None) or getattr(err, "status", None)
        if code in (401, 403):
            raise FetchError(
                f"Kaggle refused {fe.dataset}/{fe.file} (HTTP {code}): check your credentials and accept "
                f"the dataset's rules at {fe.page()}"
            ) from None
        if code == 404:
            raise FetchError(
                f"Kaggle has no {fe.file!r} in {fe.dataset} (HTTP 404): fix the recipe"
            ) from None
        raise FetchError(f"Kaggle download of {fe.dataset}/{fe.file} failed: {_first_line(err)}") from None
    name = posixpath.basename(fe.file)
    got = staging / name
    if not got.is_file() and (staging / f"{name}.zip").is_file():
        zipped = staging / f"{name}.zip"
        extract(zipped, staging, [name, f"*/{name}"])
        nested = [Path(p) for p in glob.glob(str(staging / "**" / name), recursive=True)]
        if not got.is_file() and nested:
            os.replace(nested[0], got)
        zipped.unlink(missing_ok=True)
    if not got.is_file():
        raise FetchError(f"Kaggle download of {fe.dataset}/{fe.file} left no {name} in {staging}")
    info = verify(got, size=size, sha256=sha, shown=item.dest, origin=fe.origin())
    os.replace(got, item.dest)
    shutil.rmtree(staging, ignore_errors=True)
    return info


# --------------------------------------------------------------------------- dry run


def _plan(item: Item, lock: Lock, net: Net) -> None:
    """What fetch would do for this entry; no file is written."""
    fe = item.entry
    assert fe is not None
    if isinstance(fe, ManualFetch):
        found = [Path(p) for p in glob.glob(str(item.dest)) if Path(p).is_file()]
        if found:
            item.status, item.size = "present", sum(p.stat().st_size for p in found)
            item.detail = "placed by hand; fetch verifies it against the lock"
        else:
            item.status, item.detail = "manual", _manual_message(item, fe)
        return
    recorded = lock.get(item.key, fe.origin())
    size = fe.size if fe.size is not None else (recorded or {}).get("size")
    if item.dest.is_file() and (size is None or item.dest.stat().st_size == size):
        item.status, item.size = "present", item.dest.stat().st_size
        item.detail = "fetch verifies its sha256" if (fe.sha256 or recorded) else "fetch records its sha256"
        return
    twin = _twin(item, fe, lock, verify=False)
    if twin is not None:
        item.status, item.size = "would copy", twin[1].get("size")
        item.detail = f"the same file as {twin[0]}, already fetched"
        return
    item.status = "would download"
    item.detail = fe.page()
    part = item.dest.with_name(item.dest.name + PART)
    if part.is_file():
        item.detail += f" (resumes after {part.stat().st_size:,} bytes)"
    if size is not None:
        item.size = size
        return
    probe = Net(retries=0, backoff=net.backoff, timeout=min(net.timeout, 15.0))
    try:
        if isinstance(fe, UrlFetch):
            response, _ = _open(fe.url, {"Accept-Encoding": "identity"}, probe.timeout, method="HEAD")
            with response:
                length = response.headers.get("Content-Length")
                item.size = int(length) if length and length.isdigit() else None
        elif isinstance(fe, HfFetch):
            item.size = _resolve_hf(fe, recorded, probe, item.dest)[3]
        elif isinstance(fe, OsfFetch):
            item.size = _resolve_osf(fe, probe, item.dest)[1]
        else:
            item.detail += " (size known after the first download)"
    except (MeadowError, urllib.error.URLError, OSError) as err:
        item.detail += f" (size unknown: {_first_line(err)})"


def human_size(n: int | None) -> str:
    """``1536`` -> ``1.5 KiB``; None -> ``?``."""
    if n is None:
        return "?"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"  # pragma: no cover


# --------------------------------------------------------------------------- SOURCE.md


def _write_source_card(folder: Path, name: str, entry: SourceEntry | BenchmarkEntry, lock: Lock) -> None:
    """``<raw_dir>/<source>/SOURCE.md``: license, citation and the origin of every file."""
    if isinstance(entry, BenchmarkEntry):
        what = f"the benchmark `{name}` (kind `{entry.kind}`; evaluation only, never training data)"
        license_, citation = entry.license(), entry.citation()
    else:
        spec = sources.get(entry.loader)
        what = f"the source `{name}` (loader `{entry.loader}`)"
        license_, citation = spec.license, spec.citation
    lines = [
        f"# {name}",
        "",
        f"Raw files of {what}, fetched by meadow {__version__}.",
        "",
        f"**License:** {license_}",
        "",
        "## Files",
        "",
    ]
    for fe in entry.fetch:
        where = fe.destination()
        lines.append(f"- `{where}`: {_describe(fe)}")
        for key, rec in sorted(lock.files.items()):
            if key.startswith(f"{name}/") and rec.get("origin") == fe.origin():
                rev = f", commit {rec['revision']}" if rec.get("revision") else ""
                lines.append(
                    f"  - `{key.split('/', 1)[1]}`: {rec['size']:,} bytes, sha256 `{rec['sha256']}`{rev} "
                    f"(recorded {rec.get('recorded_at', '?')})"
                )
        if fe.license:
            lines.append(f"  - license: {fe.license}")
        if fe.note:
            lines.append(f"  - {fe.note}")
    lines += ["", "## Citation", "", citation.strip() or "(none given)", ""]
    folder.mkdir(parents=True, exist_ok=True)
    _write_atomic(folder / SOURCE_CARD, "\n".join(lines))


def _describe(fe: FetchEntry) -> str:
    if isinstance(fe, UrlFetch):
        return f"downloaded from <{fe.url}>"
    if isinstance(fe, HfFetch):
        return (
            f"`{fe.file}` of the Hugging Face {fe.repo_type} `{fe.repo_id}` (<{fe.page()}>), "
            f"revision `{fe.revision}`"
        )
    if isinstance(fe, KaggleFetch):
        return f"`{fe.file}` of the Kaggle dataset `{fe.dataset}` (<{fe.page()}>)"
    if isinstance(fe, OsfFetch):
        return f"`{fe.file}` of the OSF project {fe.project} (<{fe.page()}>)"
    assert isinstance(fe, ManualFetch)
    return f"downloaded by hand from <{fe.url}>" + (f": {fe.instructions}" if fe.instructions else "")
