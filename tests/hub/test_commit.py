"""The stage-then-commit flow of both pushes (meadow.hub.commit): one real commit round trip against
the fake Hub on 127.0.0.1, and the token's errors."""

from __future__ import annotations

import json
import logging

import pytest
from hub_fakes import TOKEN

from meadow.hub.dataset import push, stage
from meadow.hub.errors import PushError


def test_push_uploads_the_staged_folder_in_one_commit(build_dir, tmp_path, hub, caplog):
    caplog.set_level(logging.DEBUG)
    staged = stage(build_dir, tmp_path / "expected", repo_id="org/demo")
    result = push(build_dir, repo_id="org/demo", private=True)
    assert result.uploaded and result.commit_oid == "c" * 40 and "/commit/" in result.commit_url
    assert hub.paths() == [
        "GET /api/whoami-v2",
        "POST /api/repos/create",
        "POST /api/validate-yaml",
        "POST /api/datasets/org/demo/preupload/main",
        "POST /api/datasets/org/demo/commit/main",
    ]
    create = json.loads(hub.calls[1].body)
    assert create["name"] == "demo" and create["organization"] == "org" and create["type"] == "dataset"
    assert create.get("private") is True or create.get("visibility") == "private"
    # One commit holding exactly the staged folder, byte for byte.
    assert sorted(hub.files) == [p for p, _ in staged.files]
    for path, data in hub.files.items():
        assert data == (tmp_path / "expected" / path).read_bytes(), path
    assert [op.path_in_repo for op in result.operations] == [p for p, _ in staged.files]
    header = json.loads(hub.calls[-1].body.splitlines()[0])
    assert header["key"] == "header" and "78 records" in header["value"]["summary"]
    # The token travels in the Authorization header only: never in a file, a body or a log.
    for call in hub.calls:
        assert TOKEN.encode() not in call.body
    assert all(TOKEN.encode() not in data for data in hub.files.values())
    assert TOKEN not in caplog.text


def test_push_to_a_branch_creates_it(build_dir, hub):
    push(build_dir, repo_id="org/demo", revision="v1")
    assert "POST /api/datasets/org/demo/branch/v1" in hub.paths()
    assert hub.paths()[-1] == "POST /api/datasets/org/demo/commit/v1"


def test_a_rejected_token_is_a_clear_error(build_dir, hub, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_wrong")
    with pytest.raises(PushError) as err:
        push(build_dir, repo_id="org/demo")
    text = str(err.value)
    assert "rejected the token from HF_TOKEN" in text and "401" in text and "Nothing was pushed" in text
    assert "hf_wrong" not in text
    assert hub.paths() == ["GET /api/whoami-v2"]


def test_no_write_access_is_a_clear_error(build_dir, hub):
    hub.commit_status = 403
    with pytest.raises(PushError, match="no write access"):
        push(build_dir, repo_id="org/demo")
    assert hub.files == {}


def test_a_missing_token_is_a_clear_error(build_dir, monkeypatch, tmp_path):
    import huggingface_hub

    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_TOKEN_PATH", str(tmp_path / "no-token"))
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)
    with pytest.raises(PushError, match="no Hugging Face token"):
        push(build_dir, repo_id="org/demo")
