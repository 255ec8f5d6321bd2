"""Deterministic (greedy) generation of answers, batched, as medAlpaca's eval asked its models;
the answer letter is then read by :func:`meadow.eval.extract.extract_letter`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

STOP = ("\n\n### ", "### Instruction:", "### Input:", "### Response:")
"""Where a medAlpaca-template answer ends: the model starting a new section."""


def cut(text: str) -> str:
    """``text`` up to the first stop marker, stripped."""
    end = len(text)
    for marker in STOP:
        at = text.find(marker)
        if at != -1:
            end = min(end, at)
    return text[:end].strip()


def greedy(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    *,
    max_new_tokens: int = 32,
    batch_size: int = 8,
    progress: bool = False,
) -> list[str]:
    """Each prompt's greedy continuation (left-padded batches, longest first), cut at a stop marker."""
    import torch
    from tqdm.auto import tqdm

    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    encoded = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    order = sorted(range(len(prompts)), key=lambda i: (-len(encoded[i]), i))
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    device = next(model.parameters()).device
    out: list[str] = [""] * len(prompts)
    with torch.inference_mode():
        for batch in tqdm(batches, desc="generate", unit="batch", disable=not progress):
            width = max(len(encoded[i]) for i in batch)
            input_ids = torch.full((len(batch), width), pad, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for row, i in enumerate(batch):
                ids = encoded[i]
                input_ids[row, width - len(ids) :] = torch.tensor(ids, dtype=torch.long)
                mask[row, width - len(ids) :] = 1
            generated = model.generate(
                input_ids=input_ids.to(device),
                attention_mask=mask.to(device),
                max_new_tokens=max_new_tokens,
                do_sample=False,
                num_beams=1,
                temperature=None,
                top_p=None,
                top_k=None,
                pad_token_id=pad,
            )
            for row, i in enumerate(batch):
                text = tokenizer.decode(generated[row, width:], skip_special_tokens=True)
                out[i] = cut(text)
    return out
