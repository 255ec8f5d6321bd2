"""Which Hugging Face Hub, and the token for it: read by fetch and by both pushes.

The token comes from ``HF_TOKEN`` or the saved ``hf auth login``; it is never written or logged.
"""

from __future__ import annotations

import os


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
