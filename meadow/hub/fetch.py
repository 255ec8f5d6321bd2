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

This module decides what happens to each entry; the pieces live beside it: http (the resumable
download), archives, lock (``sources.lock``), one module per origin that needs more than a URL
(hf, osf, kaggle, manual: files only a person can download) and source_card (SOURCE.md).
"""

from __future__ import annotations

import logging
import urllib.error
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from meadow.errors import MeadowError
from meadow.hub import http
from meadow.hub.archives import extract
from meadow.hub.errors import FetchError, first_line
from meadow.hub.hf import pinned_elsewhere, resolve_hf
from meadow.hub.http import PART, Net, Resolved
from meadow.hub.kaggle import fetch_kaggle
from meadow.hub.lock import LOCK_NAME, Lock, expected_file, lock_entry
from meadow.hub.manual import check_manual, manual_message, placed
from meadow.hub.osf import resolve_osf
from meadow.hub.source_card import write_source_card
from meadow.io import atomic_copy, file_info
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


@dataclass
class Item:
    """One fetch entry of one source and what happened to it."""

    source: str
    entry: FetchEntry | None
    dest: Path
    key: str
    status: str = ""
    """ok | downloaded | recorded | copied (in place) | manual | error | no entry (need a person) |
    would download | would copy | present (a dry run's plan)"""
    detail: str = ""
    size: int | None = None

    @property
    def needs_action(self) -> bool:
        return self.status in ("manual", "error", "no entry")

    @property
    def in_place(self) -> bool:
        """The file is in place, verified or recorded in the lock (not so for a dry run's plan)."""
        return self.status in IN_PLACE


IN_PLACE = frozenset({"ok", "downloaded", "recorded", "copied"})


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

    def problem(self) -> str | None:
        """Why the command fails (exit status 1), in one sentence; None when it succeeds.

        A fetch fails while a download failed or a file still needs a person; a dry run fails
        when a file it would download could not be checked (no network, HTTP 404...). The
        sentence names the lock only when files were recorded in it."""
        errors, manual = len(self.errors), len(self.manual)
        if self.dry_run:
            if not errors:
                return None
            return f"{errors} file(s) could not be checked (see above): the plan is incomplete"
        if not (errors or manual):
            return None
        done = sum(i.in_place for i in self.items)
        kept = (
            f"the {done} file(s) in place are verified and recorded in {self.lock_path}"
            if done
            else "nothing was downloaded or recorded"
        )
        return f"{errors} download(s) failed, {manual} file(s) need a manual download (see above); {kept}"


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
    planned: dict[str, Item] = {}  # a dry run: origin -> the item that would download it
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
                    _plan(item, lock, net, planned)
                else:
                    _fetch_one(item, lock, net, progress)
            except MeadowError as err:
                item.status, item.detail = "error", str(err)
            items.append(item)
        report.items.extend(items)
        if dry_run or not entry.fetch:
            continue
        # SOURCE.md names only the files that are in place: nothing is claimed for a failed one
        fetched = [i.entry for i in items if i.in_place and i.entry is not None]
        if fetched:
            write_source_card(folder, name, entry.model_copy(update={"fetch": fetched}), lock)
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
    if recorded and pinned_elsewhere(fe, recorded):
        recorded = None  # the recipe pins another commit
    size, sha = expected_file(fe, recorded)
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
        info, extra = fetch_kaggle(fe, item.dest, size, sha, progress), {}
    else:
        resolved = _resolve(fe, recorded, net, item.dest)
        r_sha, extra = resolved.sha256, resolved.extra
        info = http.download(
            resolved.url,
            item.dest,
            size=size if size is not None else resolved.size,
            sha256=sha or r_sha,
            headers=resolved.headers,
            auth_origin=resolved.auth_origin,
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
    entry = lock_entry(item.source, fe, info, **(extra or {}))
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
        if pinned_elsewhere(fe, rec):
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
    item.dest.with_name(item.dest.name + PART).unlink(missing_ok=True)  # a partial download: not needed
    atomic_copy(lock.path.parent / key, item.dest)
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


def _fetch_manual(item: Item, fe: ManualFetch, lock: Lock) -> None:
    if is_glob(fe.file):
        found = placed(item.dest)
        if not found:
            _ask_person(item, fe)
            return
        folder = _extract_root(item, fe)
        for path in found:
            key = f"{item.source}/{path.relative_to(folder).as_posix()}"
            check_manual(key, path, fe, lock, item.source)
        item.status, item.detail = "ok", f"{len(found)} file(s) placed by hand, verified or recorded"
        item.size = sum(p.stat().st_size for p in found)
        return
    if not item.dest.is_file() and _copy_twin(item, fe, lock):
        return
    if not item.dest.is_file():
        _ask_person(item, fe)
        return
    info, new = check_manual(item.key, item.dest, fe, lock, item.source)
    item.status, item.size = ("recorded" if new else "ok"), info["bytes"]
    item.detail = "placed by hand; " + ("sha256 recorded (trust on first use)" if new else "verified")
    _maybe_extract(item, fe, lock)


def _ask_person(item: Item, fe: ManualFetch) -> None:
    """A file only a person can download: where to get it, and the folder to put it in (made)."""
    item.dest.parent.mkdir(parents=True, exist_ok=True)
    item.status, item.detail = "manual", manual_message(fe, item.dest)


def _resolve(fe: FetchEntry, recorded: dict[str, Any] | None, net: Net, dest: Path) -> Resolved:
    """Where the file of a url, hf or osf entry is downloaded from, and what its origin vouches for."""
    if isinstance(fe, UrlFetch):
        return Resolved(fe.url)
    if isinstance(fe, HfFetch):
        return resolve_hf(fe, recorded, net, dest)
    if isinstance(fe, OsfFetch):
        return resolve_osf(fe, net, dest)
    raise AssertionError(fe)


def _plan(item: Item, lock: Lock, net: Net, planned: dict[str, Item]) -> None:
    """What fetch would do for this entry; no file is written. ``planned`` maps the origins the
    dry run would download to their items, so a file two entries share is downloaded (and
    counted) once: the later entry would copy it, and the first names every entry that uses it.
    A file whose size is unknown is checked with a HEAD (or metadata) request; one that cannot
    be checked (no network, HTTP 404...) is an error, and the plan is incomplete."""
    fe = item.entry
    assert fe is not None
    if isinstance(fe, ManualFetch):
        found = placed(item.dest)
        if found:
            item.status, item.size = "present", sum(p.stat().st_size for p in found)
            item.detail = "placed by hand; fetch verifies it against the lock"
        else:
            item.status, item.detail = "manual", manual_message(fe, item.dest)
        return
    recorded = lock.get(item.key, fe.origin())
    size, _ = expected_file(fe, recorded)
    if item.dest.is_file() and (size is None or item.dest.stat().st_size == size):
        item.status, item.size = "present", item.dest.stat().st_size
        item.detail = "fetch verifies its sha256" if (fe.sha256 or recorded) else "fetch records its sha256"
        return
    twin = _twin(item, fe, lock, verify=False)
    if twin is not None:
        item.status, item.size = "would copy", twin[1].get("size")
        item.detail = f"the same file as {twin[0]}, already fetched"
        return
    first = planned.get(fe.origin()) if not is_glob(item.key) else None
    if first is not None:
        item.status, item.size = "would copy", first.size
        item.detail = f"the same file as {first.key}, downloaded once"
        first.detail += f"; also for {item.key}"
        return
    item.status = "would download"
    item.detail = fe.page()
    part = item.dest.with_name(item.dest.name + PART)
    if part.is_file():
        item.detail += f" (resumes after {part.stat().st_size:,} bytes)"
    if size is not None:
        item.size = size
    else:
        _probe_size(item, fe, recorded, net)
    if item.status == "would download":
        planned[fe.origin()] = item


def _probe_size(item: Item, fe: FetchEntry, recorded: dict[str, Any] | None, net: Net) -> None:
    """A dry run's size of a file neither the recipe nor the lock knows: a HEAD request, or the
    Hub's or OSF's metadata. Not reachable, or refused: the item is an error saying why."""
    probe = Net(retries=0, backoff=net.backoff, timeout=min(net.timeout, 15.0))
    try:
        if isinstance(fe, UrlFetch):
            response, _ = http.open_url(fe.url, {"Accept-Encoding": "identity"}, probe.timeout, method="HEAD")
            with response:
                length = response.headers.get("Content-Length")
                item.size = int(length) if length and length.isdigit() else None
        elif isinstance(fe, (HfFetch, OsfFetch)):
            item.size = _resolve(fe, recorded, probe, item.dest).size
        else:
            item.detail += " (size known after the first download)"
    except urllib.error.HTTPError as err:
        if err.code in (405, 501):  # a server that answers no HEAD: the GET will tell
            item.detail += f" (size unknown: HEAD answered HTTP {err.code})"
        else:
            item.status, item.detail = "error", str(http.status_error(fe.url, err.code, item.dest, fe.page()))
    except (urllib.error.URLError, OSError) as err:
        url = fe.url if isinstance(fe, UrlFetch) else fe.page()
        plain = http.unreachable(err, url)
        item.status, item.detail = "error", f"{url}: {plain or first_line(err)}; not checked"
    except MeadowError as err:
        item.status, item.detail = "error", f"{first_line(err)}; not checked"
