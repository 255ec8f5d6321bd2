"""Attention for packed rows that costs what the examples cost, not what the row costs.

A packed row (``--packing``) holds a batch's examples one after another, with position ids that
restart at 0 for each. transformers' SDPA path turns that into one block-diagonal causal mask
over the whole row and computes attention for every pair of positions, masked or not: a row of
8 examples of ~170 tokens costs 1,380^2 pairs instead of 8 x 170^2, and keeps the whole matrix
for the backward pass. Flash-attention's variable-length kernels avoid this on GPUs that have
them; this implementation does the same with plain SDPA, on any device: causal attention over
each example's own span, concatenated. Registered with transformers' AttentionInterface, so the
model code is untouched; anything that is not a packed row without a cache (padded batches,
generation) goes to transformers' own SDPA function with its mask.
"""

from __future__ import annotations

from typing import Any

NAME = "meadow_packed_sdpa"


def packed_sdpa(
    module: Any,
    query: Any,
    key: Any,
    value: Any,
    attention_mask: Any,
    dropout: float = 0.0,
    scaling: float | None = None,
    **kwargs: Any,
) -> tuple[Any, None]:
    import torch
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    position_ids = kwargs.get("position_ids")
    length = query.shape[2]
    if (
        position_ids is None
        or query.shape[0] != 1
        or key.shape[2] != length
        or not getattr(module, "is_causal", True)
        or kwargs.get("cache") is not None
    ):
        return sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs
        )
    starts = (position_ids.reshape(-1) == 0).nonzero().flatten().tolist()
    if not starts or starts[0] != 0:
        starts.insert(0, 0)
    bounds = [*starts, length]
    groups = getattr(module, "num_key_value_groups", 1)
    p = dropout if module.training else 0.0
    parts = [
        torch.nn.functional.scaled_dot_product_attention(
            query[:, :, start:end],
            key[:, :, start:end],
            value[:, :, start:end],
            dropout_p=p,
            is_causal=True,
            scale=scaling,
            enable_gqa=groups > 1,
        )
        for start, end in zip(bounds[:-1], bounds[1:], strict=True)
    ]
    out = parts[0] if len(parts) == 1 else torch.cat(parts, dim=2)
    return out.transpose(1, 2).contiguous(), None


def register() -> str:
    """Make ``NAME`` an ``attn_implementation`` transformers accepts; returns it."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(NAME, packed_sdpa)
    # masks as for SDPA, used where a batch is not a packed row
    AttentionMaskInterface.register(NAME, sdpa_mask)
    return NAME
