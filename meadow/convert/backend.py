"""The interface every LLM backend implements, and what a request and an answer are.

A backend turns chat messages into a completion. The runner (meadow.convert.runner)
owns caching, concurrency, retries and validation; a backend only answers one request
and says, through BackendError, whether a failure is worth retrying.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

Message = dict[str, str]
"""{"role": "system" | "user" | "assistant", "content": "..."}"""


class GenParams(BaseModel):
    """Generation parameters; all of them are part of the cache key."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    temperature: float = Field(0.0, ge=0.0, le=2.0)
    max_tokens: int = Field(384, ge=1)
    seed: int | None = 0
    prefill: str = Field(
        "",
        description='text the answer must start with (e.g. \'{"question": "\'): a local model continues '
        "it; an OpenAI-compatible server gets it as a final assistant message only where the backend "
        "is configured to (servers differ)",
    )
    json_schema: dict[str, Any] | None = Field(
        None, description="ask for structured output with this JSON schema where the backend supports it"
    )
    attempt: int = Field(
        0, ge=0, description="retry number after an invalid answer; varies the sampling seed"
    )


@dataclass(frozen=True)
class Completion:
    """What the model answered. ``text`` includes ``prefill`` when the backend continued it."""

    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class BackendError(Exception):
    """A request failed. ``retryable``: worth trying again (429, 5xx, timeout, dropped connection);
    ``retry_after``: seconds the server asked to wait, when it said."""

    def __init__(
        self, message: str, *, retryable: bool, retry_after: float | None = None, status: int | None = None
    ):
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after
        self.status = status


class Backend(Protocol):
    """An LLM that answers chat messages."""

    @property
    def identity(self) -> str:
        """Stable name of backend + model for the cache key, e.g. 'openai:gpt-3.5-turbo' or
        'local:SmolLM2-135M-Instruct@<sha256 of the weights file>'. Never contains a secret."""
        ...

    async def complete(self, messages: list[Message], params: GenParams) -> Completion:
        """Answer one request. Raise BackendError on failure. Safe to call concurrently."""
        ...

    async def aclose(self) -> None:
        """Release connections, threads and models."""
        ...
