"""A shard function for tests of sharded builds: ``meadow.build.shards.run_shard`` with a hook.

Tests put ``run_shard`` below in place of meadow's (``monkeypatch.setattr``) in the driver; the
executor ships it to its workers (a spawned process imports this module; Ray gets it by value).
Each attempt appends its pid to ``<FOLDER>/<source>.<index>.pid``, waits while
``<source>.<index>.hold`` exists there and fails while ``<source>.<index>.fail`` does. The folder
comes from the environment (``ENV``), which local workers inherit and the test Ray cluster is
started with.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

ENV = "MEADOW_TEST_SHARD_HOOK"
FOLDER = Path(tempfile.gettempdir()) / f"meadow-shard-hook-{os.getpid()}"
"""The hook folder of this test session (the pytest process's pid keeps sessions apart)."""


def run_shard(job: Any, decon: Any = None) -> dict[str, Any]:
    from meadow.build import shards

    folder = os.environ.get(ENV)
    if folder:
        hook = Path(folder)
        tag = f"{job.source}.{job.index}"
        with open(hook / f"{tag}.pid", "a", encoding="utf-8") as f:
            f.write(f"{os.getpid()}\n")
        while (hook / f"{tag}.hold").exists():
            time.sleep(0.05)
        if (hook / f"{tag}.fail").exists():
            raise RuntimeError(f"test hook: shard {tag} fails")
    return shards.run_shard(job, decon)
