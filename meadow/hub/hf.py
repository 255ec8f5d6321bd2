"""Hugging Face Hub files for `meadow fetch`.

A file is resolved with huggingface_hub (revision -> commit, size, LFS sha256, the CDN
location; ``HF_ENDPOINT`` honoured, token from ``HF_TOKEN`` or the saved login) and then
downloaded by the same resumable downloader as plain URLs (meadow.hub.http): the Hub's own
``hf_hub_download`` does not resume across runs, nor verify the content hash. The token is
sent to the Hub only, never to the CDN it redirects to.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from meadow import __version__
from meadow.hub.auth import hf_endpoint, hf_token
from meadow.hub.errors import FetchError, first_line, is_connection_error, status_code
from meadow.hub.http import RETRY_STATUS, Net, Resolved, unreachable, url_origin
from meadow.schemas.fetch import FetchEntry, HfFetch

_COMMIT = re.compile(r"^[0-9a-f]{40}$")


def pinned_elsewhere(fe: FetchEntry, recorded: dict[str, Any]) -> bool:
    """Whether the recipe pins ``fe`` to another Hub commit than the lock entry ``recorded`` names."""
    if not isinstance(fe, HfFetch) or not _COMMIT.match(fe.revision):
        return False
    return recorded.get("revision") != fe.revision


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


def resolve_hf(fe: HfFetch, recorded: dict[str, Any] | None, net: Net, dest: Path) -> Resolved:
    """The download of ``fe``: its URL at the commit the revision resolves to, the Hub's headers
    (with the token), its size and (for an LFS file) sha256; ``dest`` is named in errors."""
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
    etag = (meta.etag or "").strip('"')  # an LFS file's ETag is its sha256 (a git file's is a sha1)
    extra = {"revision": meta.commit_hash, "requested_revision": fe.revision, "repo_id": fe.repo_id}
    return Resolved(meta.location or url, headers, url_origin(endpoint), meta.size, etag, extra)


def _hf_call(call: Callable[[], Any], fe: HfFetch, revision: str, dest: Path, net: Net) -> Any:
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
            code = status_code(err)
            if code in (401, 403):
                raise FetchError(
                    f"{where}: HTTP {code}, access refused. Set HF_TOKEN to a token that can read it "
                    f"(or run `hf auth login`), or download {fe.file} from {fe.page()} and put it at {dest}"
                ) from None
            if code not in RETRY_STATUS:
                raise FetchError(f"{where}: {first_line(err)}") from None
            failure = err
        except FileMetadataError as err:
            raise FetchError(f"{where}: {first_line(err)} (is HF_ENDPOINT a Hugging Face Hub?)") from None
        except ValueError as err:  # an invalid repo id or revision
            raise FetchError(f"{where}: {first_line(err)}") from None
        except OSError as err:
            failure = err
        except Exception as err:  # httpx/httpx2 connection errors, whichever the installed hub uses
            if not is_connection_error(err):
                raise
            failure = err
        if plain := unreachable(failure, hf_endpoint()):
            raise FetchError(f"{where}: {plain}") from None
        attempt += 1
        if attempt > net.retries:
            raise FetchError(f"{where}: cannot resolve {fe.file}: {first_line(failure)}") from None
        time.sleep(net.delay(attempt))
