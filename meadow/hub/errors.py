"""The errors of `meadow fetch` and `meadow push`, and how the others' errors are read for their messages."""

from __future__ import annotations

from meadow.errors import MeadowError


class FetchError(MeadowError):
    """A download that failed, with what to do about it."""


class PushError(MeadowError):
    """A build that cannot be pushed, or a push the Hub refused."""


def first_line(err: BaseException) -> str:
    """The first line of an error's message, or its type's name where it has none."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def status_code(err: BaseException) -> int | None:
    """The HTTP status of an error that carries a response (huggingface_hub's, requests')."""
    return getattr(getattr(err, "response", None), "status_code", None)


def is_connection_error(err: BaseException) -> bool:
    """A connection error of the Hub client's HTTP library (httpx or httpx2, whichever is installed)."""
    return type(err).__module__.split(".")[0] in ("httpx", "httpx2", "httpcore", "httpcore2")
