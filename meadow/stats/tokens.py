"""Token counters for the length statistics: a tokenizer's token count, or whitespace words."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from meadow.errors import MeadowError

WHITESPACE = "whitespace"
DEFAULT_TOKENIZER = "smollm2"
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model")


@dataclass
class TokenCounter:
    name: str
    """What counted, for the report (a model identity, or 'whitespace words')."""
    unit: str
    """'tokens' or 'words'."""
    count: Callable[[Sequence[str]], list[int]]
    """Lengths of a batch of texts (no special tokens added)."""


def token_counter(name: str = DEFAULT_TOKENIZER) -> TokenCounter:
    """``whitespace``, ``smollm2`` (the embedded model's tokenizer), a model directory, a GGUF file,
    a folder holding only a tokenizer, or a Hugging Face Hub id already in the local cache."""
    if name == WHITESPACE:
        return TokenCounter("whitespace-separated words", "words", _words)
    tokenizer, identity = _load(name)
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None and hasattr(backend, "encode_batch_fast"):
        # A fast tokenizer's Rust pipeline is the whole tokenizer; without offsets it runs ~20% faster.
        backend.no_truncation()
        backend.no_padding()

        def fast(texts: Sequence[str]) -> list[int]:
            return [len(e) for e in backend.encode_batch_fast(list(texts), add_special_tokens=False)]

        return TokenCounter(identity, "tokens", fast)

    def count(texts: Sequence[str]) -> list[int]:
        if not texts:
            return []
        enc = tokenizer(list(texts), add_special_tokens=False, return_attention_mask=False, verbose=False)
        return [len(ids) for ids in enc["input_ids"]]

    return TokenCounter(identity, "tokens", count)


def _words(texts: Sequence[str]) -> list[int]:
    return [len(t.split()) for t in texts]


def _load(name: str) -> tuple[Any, str]:
    from meadow.models import require, resolve_model

    path = Path(name).expanduser()
    if (
        path.is_dir()
        and any((path / f).is_file() for f in _TOKENIZER_FILES)
        and not (path / "config.json").is_file()
    ):
        require("transformers", f"loading the tokenizer in {path}")
        from transformers import AutoTokenizer

        try:
            return AutoTokenizer.from_pretrained(path, local_files_only=True), f"tokenizer {path.name}"
        except (OSError, ValueError) as err:
            raise MeadowError(f"tokenizer {name}: cannot load it ({err})") from None
    model = resolve_model(name)
    try:
        return model.load_tokenizer(), f"{model.identity} tokenizer"
    except (OSError, ValueError) as err:
        raise MeadowError(f"tokenizer {name}: cannot load it from {model.path} ({err})") from None
