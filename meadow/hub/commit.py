"""The one flow of both pushes (a build, a trained model): stage a repository folder, then upload
it in one commit.

``--stage DIR`` keeps the staged folder there and uploads nothing; ``--dry-run`` stages into a
temporary folder and uploads nothing; a push needs the token (``HF_TOKEN`` or the saved login)
before anything is staged, creates the repository (and branch) if missing and uploads the folder
with one ``HfApi.create_commit``. The token is never written or logged.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from meadow import __version__
from meadow.hub.auth import hf_endpoint, redact, require_token, token_source
from meadow.hub.errors import PushError, is_connection_error, status_code
from meadow.io import atomic_dir

log = logging.getLogger(__name__)


@dataclass
class PushResult:
    staged: Any
    """What was staged: a ``dataset.Staged`` build, or a ``model.StagedModel``."""
    repo_id: str
    commit_url: str | None = None
    commit_oid: str | None = None
    uploaded: bool = False
    operations: list[Any] = field(default_factory=list)


@contextlib.contextmanager
def staging(folder: Path, marker: str) -> Iterator[Path]:
    """A fresh temporary folder that replaces ``folder`` only if the block succeeds. ``folder``
    must be new, empty or an earlier stage (it holds ``marker``): nobody's files are replaced."""
    if folder.exists() and any(folder.iterdir()) and not (folder / marker).is_file():
        raise PushError(f"{folder}: not empty and not an earlier stage: choose a new or empty folder")
    with atomic_dir(folder) as tmp:
        yield tmp


def listing(folder: Path) -> list[tuple[str, int]]:
    """Every file in ``folder``: (its path in the repository, bytes), in path order."""
    return sorted(
        (p.relative_to(folder).as_posix(), p.stat().st_size) for p in folder.rglob("*") if p.is_file()
    )


def operations(staged: Any) -> list[Any]:
    """One ``CommitOperationAdd`` per staged file (``staged.files``, in ``staged.folder``), in path order."""
    from huggingface_hub import CommitOperationAdd

    return [
        CommitOperationAdd(path_in_repo=path, path_or_fileobj=str(staged.folder / path))
        for path, _ in staged.files
    ]


def publish(
    stage_to: Callable[[Path, bool], Any],
    commit: Callable[[Any], tuple[str, str]],
    repo_id: str,
    *,
    repo_type: str,
    private: bool,
    revision: str | None,
    dry_run: bool,
    stage_dir: str | Path | None,
) -> PushResult:
    """Stage, then upload in one commit: the flow of both pushes.

    ``stage_to(folder, temporary)`` stages the repository into ``folder`` (``temporary``: a folder
    removed afterwards, so weights may be hard-linked); ``commit(staged)`` gives the commit's
    message and description. ``stage_dir`` keeps the staged folder there and uploads nothing;
    ``dry_run`` stages into a temporary folder and uploads nothing; otherwise the token is
    required before anything is staged.
    """
    if stage_dir is not None:
        staged = stage_to(Path(stage_dir), False)
        return PushResult(staged, repo_id, operations=operations(staged))
    token = None if dry_run else require_token()
    with tempfile.TemporaryDirectory(prefix="meadow-stage-" if dry_run else "meadow-push-") as tmp:
        staged = stage_to(Path(tmp) / "repo", True)
        ops = operations(staged)
        if token is None:
            result = PushResult(staged, repo_id, operations=ops)
        else:
            message, description = commit(staged)
            info = upload(
                ops,
                token,
                repo_id,
                repo_type=repo_type,
                private=private,
                revision=revision,
                commit_message=message,
                commit_description=description,
            )
            result = PushResult(staged, repo_id, info.commit_url, info.oid, True, ops)
    kept = "; --stage DIR keeps it" if token is None else ""
    staged.folder = Path(f"(a temporary folder, removed{kept})")
    return result


def check_repo_id(repo_id: str) -> None:
    if "/" not in repo_id or repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise PushError(f"--repo-id {repo_id!r}: expected ORG/NAME (or USER/NAME)")


def upload(
    ops: list[Any],
    token: str,
    repo_id: str,
    *,
    repo_type: str,
    private: bool,
    revision: str | None,
    commit_message: str,
    commit_description: str,
) -> Any:
    """Create the repository (and branch) if missing, then ``ops`` in one ``create_commit``."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    endpoint = hf_endpoint()
    where = f"datasets/{repo_id}" if repo_type == "dataset" else repo_id
    api = HfApi(endpoint=endpoint, token=token, library_name="meadow", library_version=__version__)
    step = "check the token"
    try:
        user = api.whoami(token=token)
        log.info("pushing to %s/%s as %s", endpoint, where, user.get("name", "?"))
        step = "create the repository"
        api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True, token=token)
        if revision and revision != "main":
            step = f"create the branch {revision!r}"
            api.create_branch(repo_id, repo_type=repo_type, branch=revision, exist_ok=True, token=token)
        step = "commit"
        return api.create_commit(
            repo_id,
            ops,
            commit_message=commit_message,
            commit_description=commit_description,
            repo_type=repo_type,
            revision=revision,
            token=token,
        )
    except HfHubHTTPError as err:
        code = status_code(err)
        if code == 401:
            raise PushError(
                f"the Hub ({endpoint}) rejected the token from "
                f"{token_source(token)} (HTTP 401 while trying to "
                f"{step}): create a token with write access at https://huggingface.co/settings/tokens "
                "and set HF_TOKEN, or run `hf auth login`. Nothing was pushed."
            ) from None
        if code == 403:
            raise PushError(
                f"the Hub ({endpoint}) refused to {step} for {where} (HTTP 403): the token "
                "has no write access to that namespace. Nothing was pushed."
            ) from None
        raise PushError(f"the Hub ({endpoint}) failed to {step}: {redact(err, token)}") from None
    except (OSError, ValueError) as err:
        raise PushError(f"cannot {step} on {endpoint}: {redact(err, token)}") from None
    except Exception as err:  # connection errors of the hub's HTTP client (httpx / httpx2)
        if not is_connection_error(err):
            raise
        raise PushError(f"cannot reach {endpoint} to {step}: {redact(err, token)}") from None
