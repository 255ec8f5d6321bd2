"""Kaggle files for `meadow fetch`, through the ``kaggle`` package.

The package is imported only when needed: it authenticates and prints at import time, and
exits on missing credentials; both are contained here and turned into a FetchError that says
how to set credentials up.
"""

from __future__ import annotations

import contextlib
import glob
import io
import os
import posixpath
import shutil
from pathlib import Path
from typing import Any

from meadow.hub.archives import extract
from meadow.hub.errors import FetchError, first_line, status_code
from meadow.hub.http import verify
from meadow.schemas.fetch import KaggleFetch

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
        raise FetchError(f"Kaggle authentication failed: {first_line(err)}; {KAGGLE_HELP}") from None
    return api


def fetch_kaggle(
    fe: KaggleFetch, dest: Path, size: int | None, sha: str | None, progress: bool
) -> dict[str, Any]:
    """Download through the kaggle package into a hidden staging folder (kaggle resumes there),
    unzip if Kaggle wrapped the file, verify, and rename into place."""
    try:
        api = kaggle_api()
    except FetchError as err:
        raise FetchError(f"{err}; or download {fe.file} from {fe.page()} and put it at {dest}") from None
    staging = dest.with_name(f".{dest.name}.kaggle")
    staging.mkdir(parents=True, exist_ok=True)
    try:
        api.dataset_download_file(fe.dataset, fe.file, path=str(staging), force=False, quiet=not progress)
    except SystemExit:
        raise FetchError(f"Kaggle: {KAGGLE_HELP}") from None
    except Exception as err:
        code = status_code(err) or getattr(err, "status", None)
        if code in (401, 403):
            raise FetchError(
                f"Kaggle refused {fe.dataset}/{fe.file} (HTTP {code}): check your credentials and accept "
                f"the dataset's rules at {fe.page()}"
            ) from None
        if code == 404:
            raise FetchError(
                f"Kaggle has no {fe.file!r} in {fe.dataset} (HTTP 404): fix the recipe"
            ) from None
        raise FetchError(f"Kaggle download of {fe.dataset}/{fe.file} failed: {first_line(err)}") from None
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
    info = verify(got, size=size, sha256=sha, shown=dest, origin=fe.origin())
    os.replace(got, dest)
    shutil.rmtree(staging, ignore_errors=True)
    return info
