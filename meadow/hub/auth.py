"""Which Hugging Face Hub, and the token for it: read by fetch and by both pushes.

The token comes from ``HF_TOKEN`` or the saved ``hf auth login``; it is never written or logged,
and an error message that might hold it is redacted.
"""

from __future__ import annotations

import os

from meadow.hub.errors import PushError, first_line


def hf_endpoint() -> str:
    """``HF_ENDPOINT`` read now (huggingface_hub reads it once, at import), else the Hub."""
    from huggingface_hub import constants

    return (os.environ.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/")


def hf_token() -> str | None:
    """``HF_TOKEN``, else the token saved by ``hf auth login`` / ``huggingface-cli login``."""
    token = os.environ.get("HF_TOKEN", "").strip()
    if token:
        return token
    from huggingface_hub import get_token

    return get_token()


def require_token() -> str:
    """``HF_TOKEN`` or the saved login's token; never written or logged."""
    token = hf_token()
    if not token:
        raise PushError(
            "no Hugging Face token: create one with write access at https://huggingface.co/settings/tokens "
            "and set HF_TOKEN, or run `hf auth login`. Nothing was pushed."
        )
    return token


def token_source(token: str) -> str:
    """Where ``token`` came from, for a message: ``HF_TOKEN`` or the saved login."""
    return "HF_TOKEN" if os.environ.get("HF_TOKEN", "").strip() == token else "the saved login"


def redact(err: BaseException, token: str) -> str:
    """The first line of ``err`` with ``token`` blanked out."""
    text = first_line(err)
    return text.replace(token, "***") if token else text
