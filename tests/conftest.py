"""Shared pytest fixtures."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def raw_fixtures() -> Path:
    """The real upstream sample files: ``../shared/fixtures/raw`` beside the checkout.

    Set MEADOW_FIXTURES to point elsewhere. Absent: the test is skipped with the reason,
    except under CI=true, where the fixtures must be there and a missing folder fails.
    """
    root = Path(os.environ.get("MEADOW_FIXTURES", REPO.parent / "shared" / "fixtures" / "raw"))
    if not root.is_dir():
        message = f"real upstream fixtures not found at {root} (set MEADOW_FIXTURES)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + "; CI=true requires them")
        pytest.skip(message)
    return root


@pytest.fixture(scope="session")
def examples_dir() -> Path:
    """The project's own small sample files, in each source's raw format."""
    return REPO / "examples"


@pytest.fixture(scope="session")
def meadow_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """MEADOW_CACHE for the session, shared by every test that loads the embedded model: the
    SmolLM2 conversion (~20 s) happens once per test run. MEADOW_TEST_CACHE keeps it across runs."""
    root = Path(os.environ.get("MEADOW_TEST_CACHE") or tmp_path_factory.getbasetemp() / "meadow-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MEADOW_CACHE", str(root))
        yield root
