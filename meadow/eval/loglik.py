"""Log-likelihood scoring of continuations, batched, as lm-evaluation-harness does it.

For a context and a continuation: trailing whitespace of the context moves to the continuation;
``whole = encode(context + continuation)``, ``ctx = encode(context)`` and the continuation tokens are
``whole[len(ctx):]`` (no special tokens added). An empty context is the tokenizer's BOS token
(EOS where it has none: the harness's ``prefix_token_id``), or the continuation's own first
token where that is the same token. The model sees ``(ctx + cont)[:-1]`` (left-truncated
to its maximum length) and the score is the sum of the log-probabilities of the continuation tokens.
Requests are run longest first, right-padded, in batches; right padding leaves every real
position's logits as in an unpadded run. For a multiple-choice question, ``acc`` takes the option
with the highest sum and ``acc_norm`` the highest sum per character of the option's text
(lm-evaluation-harness's ``len(choice)``; for ASCII text, per byte).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Scored:
    logprob: float
    """Sum of the continuation tokens' log-probabilities."""
    greedy: bool
    """Whether every continuation token is the model's argmax."""
    tokens: int


def prefix_token_id(tokenizer: Any) -> int:
    """The token an empty context starts from: BOS, else EOS (lm-evaluation-harness's HFLM)."""
    if tokenizer.bos_token_id is not None:
        return int(tokenizer.bos_token_id)
    return int(tokenizer.eos_token_id)


def encode_pair(tokenizer: Any, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """Context and continuation token ids, split as lm-evaluation-harness's ``loglikelihood``
    (``_encode_pair``, and the prefix token for an empty context)."""
    if not context:
        cont = list(tokenizer(continuation, add_special_tokens=False)["input_ids"])
        prefix = prefix_token_id(tokenizer)
        return (cont[:1], cont[1:]) if cont and cont[0] == prefix else ([prefix], cont)
    spaces = len(context) - len(context.rstrip())
    if spaces:
        continuation = context[-spaces:] + continuation
        context = context[:-spaces]
    whole = tokenizer(context + continuation, add_special_tokens=False)["input_ids"]
    ctx = tokenizer(context, add_special_tokens=False)["input_ids"]
    return list(ctx), list(whole[len(ctx) :])


def max_length(model: Any, tokenizer: Any) -> int:
    for attr in ("max_position_embeddings", "n_positions", "n_ctx"):
        value = getattr(model.config, attr, None)
        if isinstance(value, int) and value > 0:
            return value
    value = getattr(tokenizer, "model_max_length", None)
    return value if isinstance(value, int) and 0 < value < 1_000_000 else 2048


def score(
    model: Any,
    tokenizer: Any,
    requests: Sequence[tuple[str, str]],
    *,
    batch_size: int = 8,
    progress: bool = False,
) -> list[Scored]:
    """Score each ``(context, continuation)``; results in the order of ``requests``."""
    import torch
    import torch.nn.functional as F
    from tqdm.auto import tqdm

    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    limit = max_length(model, tokenizer)
    encoded = []
    for context, continuation in requests:
        ctx, cont = encode_pair(tokenizer, context, continuation)
        if not cont:
            raise ValueError(f"empty continuation {continuation!r}")
        ids = (ctx + cont)[-(limit + 1) :][:-1]
        encoded.append((ids, cont))
    # longest first (the first batch shows whether memory suffices); ties by index: deterministic
    order = sorted(range(len(encoded)), key=lambda i: (-len(encoded[i][0]), i))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    device = next(model.parameters()).device
    results: list[Scored | None] = [None] * len(encoded)
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    with torch.inference_mode():
        for batch in tqdm(batches, desc="log-likelihood", unit="batch", disable=not progress):
            width = max(len(encoded[i][0]) for i in batch)
            input_ids = torch.full((len(batch), width), pad, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for row, i in enumerate(batch):
                ids = encoded[i][0]
                input_ids[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
                mask[row, : len(ids)] = 1
            logits = model(input_ids=input_ids.to(device), attention_mask=mask.to(device)).logits
            for row, i in enumerate(batch):
                ids, cont = encoded[i]
                n = len(cont)
                span = logits[row, len(ids) - n : len(ids)].float()
                logprobs = F.log_softmax(span, dim=-1)
                target = torch.tensor(cont, dtype=torch.long, device=span.device)
                picked = logprobs.gather(1, target[:, None]).squeeze(1)
                greedy = bool((logprobs.argmax(dim=-1) == target).all())
                results[i] = Scored(logprob=float(picked.sum()), greedy=greedy, tokens=n)
    return [r for r in results if r is not None]


def choose(logprobs: Sequence[float], lengths: Sequence[int] | None = None) -> int:
    """Index of the best option: the highest log-probability, or per unit of ``lengths`` (for
    acc_norm: the option text's length in characters, as lm-evaluation-harness's
    ``len(choice)``). Ties go to the first, as numpy's argmax does."""
    values = (
        list(logprobs)
        if lengths is None
        else [lp / max(n, 1) for lp, n in zip(logprobs, lengths, strict=True)]
    )
    return max(range(len(values)), key=lambda i: (values[i], -i))
