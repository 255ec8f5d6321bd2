"""meadow.io: atomic files and folders, created with the permissions the umask gives (tempfile's
own 0600 files and 0700 folders would make a build unreadable to the rest of a team)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from meadow.build import build
from meadow.io import atomic_dir, atomic_file, atomic_write_text

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_atomic_file_and_folder_follow_the_umask(tmp_path: Path, umask_022):
    atomic_write_text(tmp_path / "a.txt", "x")
    with atomic_dir(tmp_path / "folder") as tmp:
        (tmp / "inside.txt").write_text("y")
    assert mode(tmp_path / "a.txt") == 0o644 and mode(tmp_path / "folder") == 0o755
    os.umask(0o077)
    atomic_write_text(tmp_path / "b.txt", "x")
    assert mode(tmp_path / "b.txt") == 0o600


def test_a_failed_write_keeps_the_old_file(tmp_path: Path):
    target = tmp_path / "t.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_file(target) as f:
        f.write("half")
        raise RuntimeError("crash")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["t.txt"]


def test_a_build_folder_is_readable_by_the_group_and_others(tmp_path: Path, monkeypatch, umask_022):
    monkeypatch.chdir(REPO)
    out = build(REPO / "recipes/demo.yaml", output_dir=tmp_path, progress=False).out_dir
    assert mode(out) == 0o755
    assert {p.name: mode(p) for p in out.iterdir() if p.is_file()} == {
        p.name: 0o644 for p in out.iterdir() if p.is_file()
    }
