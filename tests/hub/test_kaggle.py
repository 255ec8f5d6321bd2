"""Kaggle files through the kaggle package (faked): credentials, unzipping, verification."""

from __future__ import annotations

import importlib.util
import zipfile
from pathlib import Path

import pytest
from hub_fakes import (
    FAST,
    one,
    write_recipe,
)

from meadow.hub import kaggle as kaggle_mod
from meadow.hub.errors import FetchError
from meadow.hub.fetch import fetch
from meadow.hub.kaggle import kaggle_api


def test_kaggle_without_credentials_is_a_clear_error_and_prints_nothing(tmp_path, monkeypatch, capsys):
    if importlib.util.find_spec("kaggle") is None:  # importing it would print: don't
        pytest.skip("the kaggle package is not installed")
    for var in ("KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN", "KAGGLE_KERNEL_RUN_TYPE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "kaggle"))
    with pytest.raises(FetchError) as err:
        kaggle_api()
    assert "kaggle.json" in str(err.value) and "KAGGLE_USERNAME" in str(err.value)
    assert capsys.readouterr().out == ""


def test_kaggle_download_is_unzipped_verified_and_recorded(workdir, monkeypatch):
    csv = b"cord_uid,title,abstract\nx1,T,A\n"
    calls = []

    class FakeApi:
        def dataset_download_file(self, dataset, file_name, path, force, quiet):
            calls.append((dataset, file_name))
            with zipfile.ZipFile(Path(path) / f"{file_name}.zip", "w") as zf:  # Kaggle zips big files
                zf.writestr(file_name, csv)

    monkeypatch.setattr(kaggle_mod, "kaggle_api", FakeApi)
    recipe = write_recipe(
        workdir,
        {
            "cord19": {
                "loader": "cord19",
                "path": "data/raw/cord19/metadata.csv",
                "fetch": {
                    "kind": "kaggle",
                    "dataset": "allen-institute-for-ai/CORD-19-research-challenge",
                    "file": "metadata.csv",
                },
            }
        },
    )
    item = one(fetch(recipe, progress=False, net=FAST))
    assert item.status == "downloaded", item.detail
    assert (workdir / "data/raw/cord19/metadata.csv").read_bytes() == csv
    assert not list((workdir / "data/raw/cord19").glob(".*kaggle*"))
    assert calls == [("allen-institute-for-ai/CORD-19-research-challenge", "metadata.csv")]
    assert one(fetch(recipe, progress=False, net=FAST)).status == "ok"
    assert len(calls) == 1


def test_kaggle_source_without_credentials_says_what_to_do(workdir, monkeypatch):
    def no_credentials():
        raise FetchError(kaggle_mod.KAGGLE_HELP)

    monkeypatch.setattr(kaggle_mod, "kaggle_api", no_credentials)
    recipe = write_recipe(
        workdir,
        {
            "cord19": {
                "loader": "cord19",
                "path": "data/raw/cord19/metadata.csv",
                "fetch": {"kind": "kaggle", "dataset": "a/b", "file": "metadata.csv"},
            }
        },
    )
    item = one(fetch(recipe, progress=False, net=FAST))
    assert (
        item.status == "error"
        and "kaggle.json" in item.detail
        and "https://www.kaggle.com/datasets/a/b" in item.detail
    )
