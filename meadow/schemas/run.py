"""How one `meadow build` runs: the command-line flags that are not part of the recipe.

One typed object, validated once, whether it comes from the command line, a test or a script, so
a flag is checked in one place (here), not in the CLI and again in the executor.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from meadow.errors import MeadowError


class RunOptions(BaseModel):
    """The flags of a build run (``meadow build --help`` shows each)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    output_dir: Path | None = Field(None, description="write OUTPUT_DIR/<name>/, not the recipe's output_dir")
    strict: bool = Field(
        False, description="fail on the first malformed row, or benchmark question, instead of counting it"
    )
    replay: bool = Field(False, description="take every LLM answer from the cache; a miss is an error")
    progress: bool = Field(True, description="progress bars (shown on a terminal only)")
    workers: int | None = Field(None, ge=1, description="read the sources in shards on N local processes")
    executor: Literal["local", "ray"] | None = Field(
        None, description="where shards are read: local (a process pool of --workers) or ray"
    )
    address: str | None = Field(None, description="the Ray cluster for --executor ray (default: auto)")
    keep_work: bool = Field(False, description="keep the shards in OUTPUT_DIR/.work/<name>/ after success")

    @model_validator(mode="after")
    def _executor_flags(self) -> RunOptions:
        if self.address is not None and self.executor != "ray":
            raise ValueError("--address is for --executor ray")
        return self

    @property
    def sharded(self) -> bool:
        """Whether the sources are read in shards on an executor (any of the executor flags set)."""
        return self.workers is not None or self.executor is not None or self.address is not None

    @property
    def executor_kind(self) -> str:
        """``local`` (the default) or ``ray``."""
        return self.executor or "local"


def run_options(**flags: Any) -> RunOptions:
    """``RunOptions(**flags)``, with a validation error turned into a MeadowError naming the flag."""
    try:
        return RunOptions(**flags)
    except ValidationError as err:
        parts = []
        for e in err.errors():
            msg = e["msg"].removeprefix("Value error, ")
            if e["type"] == "extra_forbidden":
                msg = "unknown flag"
            elif e["type"] == "literal_error":
                allowed = e["msg"].removeprefix("Input should be ").replace("'", "")
                msg = f"got {e['input']!r}, expected {allowed}"
            flag = "--" + "-".join(str(p) for p in e["loc"]).replace("_", "-")
            parts.append(f"{flag}: {msg}" if e["loc"] else msg)
        raise MeadowError("; ".join(parts)) from None
