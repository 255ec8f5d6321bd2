"""Log-likelihood scoring of continuations, batched, as lm-evaluation-harness (0.4.13) does it.

Token split, as the harness's ``loglikelihood``/``_encode_pair``: trailing whitespace of the
context moves to the continuation; ``whole = encode(context + continuation)``,
``ctx = encode(context)`` and the continuation tokens are ``whole[len(ctx):]`` (no special tokens
added). An empty context is the tokenizer's BOS token (EOS where it has none: the harness's
``prefix_token_id``), or the continuation's own first token where that is the same token. The
model sees ``(ctx + cont)[:-1]`` (left-truncated to its maximum length) and the score is the sum
of the log-probabilities of the continuation tokens. For a multiple-choice question, ``acc``
takes the option with the highest sum and ``acc_norm`` the highest sum per character of the
option's text (the harness's ``len(choice)``).

Two ways to run the model, with the same result (float32: within 1e-4):

- prefix sharing (default): the options of a question share ``ctx`` (their context is the same
  string, so its tokens are the same). One row per question holds ``ctx`` once and then each
  option's ``cont[:-1]``; a 4D attention mask lets each option's tokens see ``ctx`` and the
  option's own earlier tokens only, and position ids restart at ``len(ctx)`` for each option, so
  every option's logits are those of its own sequence ``ctx + cont[:-1]``. The vignette is read
  once instead of once per option, and the vocabulary projection is taken at the scored
  positions only (``logits_to_keep``). Where the first continuation token merges with the
  prompt's last one (``whole[:len(ctx)] != ctx``) the harness still feeds ``ctx + whole[len(ctx):]``,
  which is exactly this row's sequence: such options are counted (``boundary_merges``), not run
  twice.
- full pass: one right-padded sequence per option, longest first, as the harness batches them.
  Used for every option with ``prefix_cache=False``, for options whose sequence is left-truncated
  (its prompt is no longer the shared one) or longer than the model's sliding window, and for
  models that do not honour a custom 4D mask and position ids (checked on a tiny probe before
  each run: flash attention, ALiBi...). Each such option is counted with its reason.
"""

from __future__ import annotations

import inspect
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

PROBE_TEXT = ("The patient was admitted with fever, cough and", " shortness of breath", " a rash on the legs")


@dataclass(frozen=True)
class Scored:
    logprob: float
    """Sum of the continuation tokens' log-probabilities."""
    greedy: bool
    """Whether every continuation token is the model's argmax."""
    tokens: int


@dataclass
class ScoreStats:
    """What one ``score`` call ran: the options, how they were read, and the tokens it cost."""

    options: int = 0
    prompts: int = 0
    """Shared prompts read once (one packed row each)."""
    full_pass: Counter[str] = field(default_factory=Counter)
    """Options scored by a full pass of their own, by reason: ``no_prefix_cache``, ``model``
    (the probe failed), ``truncated``, ``sliding_window``."""
    boundary_merges: int = 0
    """Options whose first token merges with the prompt's last (scored from the shared prompt,
    on the same tokens as the harness)."""
    tokens_read: int = 0
    """Input tokens through the model, padding not counted."""
    tokens_padded: int = 0
    """Input tokens through the model, padding counted (batch x width, summed)."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "options": self.options,
            "prompts_shared": self.prompts,
            "full_pass": sum(self.full_pass.values()),
            "full_pass_reasons": dict(sorted(self.full_pass.items())),
            "boundary_merges": self.boundary_merges,
            "tokens_read": self.tokens_read,
            "tokens_padded": self.tokens_padded,
        }


@dataclass
class Scores:
    scored: list[Scored]
    """One per request, in the order of the requests."""
    stats: ScoreStats


@dataclass(frozen=True)
class _Encoded:
    ctx: tuple[int, ...]
    cont: tuple[int, ...]
    merged: bool


def prefix_token_id(tokenizer: Any) -> int:
    """The token an empty context starts from: BOS, else EOS (lm-evaluation-harness's HFLM)."""
    if tokenizer.bos_token_id is not None:
        return int(tokenizer.bos_token_id)
    return int(tokenizer.eos_token_id)


def encode_pair(tokenizer: Any, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """Context and continuation token ids, split as lm-evaluation-harness's ``loglikelihood``."""
    encoded = _encode(tokenizer, context, continuation, {})
    return list(encoded.ctx), list(encoded.cont)


def _encode(tokenizer: Any, context: str, continuation: str, memo: dict[str, tuple[int, ...]]) -> _Encoded:
    def ids(text: str) -> tuple[int, ...]:
        return tuple(tokenizer(text, add_special_tokens=False)["input_ids"])

    if not context.strip():  # (whitespace alone: the harness would fail on an empty ctx)
        cont = ids(context + continuation)
        prefix = prefix_token_id(tokenizer)
        if cont and cont[0] == prefix:
            return _Encoded(cont[:1], cont[1:], False)
        return _Encoded((prefix,), cont, False)
    spaces = len(context) - len(context.rstrip())
    if spaces:
        continuation = context[-spaces:] + continuation
        context = context[:-spaces]
    if context not in memo:
        memo[context] = ids(context)
    ctx = memo[context]
    whole = ids(context + continuation)
    return _Encoded(ctx, whole[len(ctx) :], whole[: len(ctx)] != ctx)


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
    prefix_cache: bool = True,
    progress: bool = False,
) -> Scores:
    """Score each ``(context, continuation)``; ``batch_size`` rows per forward pass (a row is a
    question's prompt with all its options under prefix sharing, one option otherwise)."""
    import torch
    from tqdm.auto import tqdm

    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    limit = max_length(model, tokenizer)
    memo: dict[str, tuple[int, ...]] = {}
    encoded = [_encode(tokenizer, context, continuation, memo) for context, continuation in requests]
    for (_, continuation), e in zip(requests, encoded, strict=True):
        if not e.cont:
            raise ValueError(f"empty continuation {continuation!r}")
    stats = ScoreStats(options=len(encoded))
    groups, full = _route(model, tokenizer, encoded, limit, prefix_cache, stats)
    results: list[Scored | None] = [None] * len(encoded)
    # longest first (the first batch shows whether memory suffices); ties by index: deterministic
    rows = sorted(groups.items(), key=lambda kv: (-_row_length(kv[0], kv[1], encoded), kv[1][0]))
    packed = [rows[k : k + batch_size] for k in range(0, len(rows), batch_size)]
    inputs = {i: (list(encoded[i].ctx) + list(encoded[i].cont))[-(limit + 1) :][:-1] for i in full}
    order = sorted(full, key=lambda i: (-len(inputs[i]), i))
    singles = [order[k : k + batch_size] for k in range(0, len(order), batch_size)]
    bar = tqdm(total=len(packed) + len(singles), desc="log-likelihood", unit="batch", disable=not progress)
    with torch.inference_mode(), bar:
        for batch in packed:
            _run_packed(model, tokenizer, batch, encoded, results, stats)
            bar.update()
        for batch in singles:
            _run_full(model, tokenizer, [(i, inputs[i], encoded[i].cont) for i in batch], results, stats)
            bar.update()
    return Scores([r for r in results if r is not None], stats)


def _route(
    model: Any, tokenizer: Any, encoded: list[_Encoded], limit: int, prefix_cache: bool, stats: ScoreStats
) -> tuple[dict[tuple[int, ...], list[int]], list[int]]:
    """The requests grouped by shared prompt tokens, and those that need a full pass (counted in
    ``stats`` with the reason)."""
    groups: dict[tuple[int, ...], list[int]] = {}
    full: list[int] = []
    shared = prefix_cache and _honours_packing(model, tokenizer)
    window = _sliding_window(model)
    for i, e in enumerate(encoded):
        reason = None
        if not prefix_cache:
            reason = "no_prefix_cache"
        elif not shared:
            reason = "model"
        elif len(e.ctx) + len(e.cont) > limit + 1:
            reason = "truncated"
        elif window is not None and len(e.ctx) + len(e.cont) - 1 > window:
            reason = "sliding_window"
        if reason:
            stats.full_pass[reason] += 1
            full.append(i)
        else:
            groups.setdefault(e.ctx, []).append(i)
            stats.boundary_merges += e.merged
    stats.prompts = len(groups)
    return groups, full


def _row_length(ctx: tuple[int, ...], members: list[int], encoded: list[_Encoded]) -> int:
    return len(ctx) + sum(len(encoded[i].cont) - 1 for i in members)


def _pick(logits: Any, targets: Sequence[int]) -> tuple[float, bool]:
    """Sum of the log-probabilities of ``targets`` under ``logits`` (one row per target), and
    whether each is the argmax."""
    import torch
    import torch.nn.functional as F

    logprobs = F.log_softmax(logits.float(), dim=-1)
    target = torch.tensor(targets, dtype=torch.long, device=logprobs.device)
    picked = logprobs.gather(1, target[:, None]).squeeze(1)
    return float(picked.sum()), bool((logprobs.argmax(dim=-1) == target).all())


def _run_full(
    model: Any,
    tokenizer: Any,
    batch: Sequence[tuple[int, list[int], tuple[int, ...]]],
    results: list[Scored | None],
    stats: ScoreStats,
) -> None:
    """One right-padded sequence per option: right padding leaves every real position's logits as
    in an unpadded run."""
    import torch

    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    device = next(model.parameters()).device
    width = max(len(ids) for _, ids, _ in batch)
    input_ids = torch.full((len(batch), width), pad, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, (_, ids, _) in enumerate(batch):
        input_ids[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        mask[row, : len(ids)] = 1
    logits = model(input_ids=input_ids.to(device), attention_mask=mask.to(device)).logits
    for row, (i, ids, cont) in enumerate(batch):
        n = len(cont)
        logprob, greedy = _pick(logits[row, len(ids) - n : len(ids)], cont)
        results[i] = Scored(logprob=logprob, greedy=greedy, tokens=n)
        stats.tokens_read += len(ids)
    stats.tokens_padded += len(batch) * width


def _run_packed(
    model: Any,
    tokenizer: Any,
    batch: Sequence[tuple[tuple[int, ...], list[int]]],
    encoded: list[_Encoded],
    results: list[Scored | None],
    stats: ScoreStats,
) -> None:
    """One row per shared prompt: ``ctx``, then each option's ``cont[:-1]`` (see the module
    docstring). Rows are left-padded, so that the scored positions (the prompt's last token and
    the options' tokens) are the last ones of every row: the vocabulary projection is taken over
    those alone (``logits_to_keep``)."""
    import torch

    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    device = next(model.parameters()).device
    lengths = [_row_length(ctx, members, encoded) for ctx, members in batch]
    width = max(lengths)
    keep = max(length - len(ctx) + 1 for length, (ctx, _) in zip(lengths, batch, strict=True))
    input_ids = torch.full((len(batch), width), pad, dtype=torch.long)
    positions = torch.zeros((len(batch), width), dtype=torch.long)
    segment = torch.full((len(batch), width), -1, dtype=torch.long)  # 0: prompt, j + 1: option j, -1: pad
    spans: list[tuple[int, int, int, int]] = []  # (request, row, prompt's last column, option's first)
    for row, ((ctx, members), length) in enumerate(zip(batch, lengths, strict=True)):
        n, at = len(ctx), width - length
        input_ids[row, at : at + n] = torch.tensor(ctx, dtype=torch.long)
        positions[row, at : at + n] = torch.arange(n)
        segment[row, at : at + n] = 0
        last, at = at + n - 1, at + n
        for j, i in enumerate(members):
            body = encoded[i].cont[:-1]
            if body:
                input_ids[row, at : at + len(body)] = torch.tensor(body, dtype=torch.long)
                positions[row, at : at + len(body)] = torch.arange(n, n + len(body))
                segment[row, at : at + len(body)] = j + 1
            spans.append((i, row, last, at))
            at += len(body)
        stats.tokens_read += length
    stats.tokens_padded += len(batch) * width
    logits = _forward_packed(model, input_ids, positions, segment, keep, device)
    first = width - keep  # the column of logits[:, 0]
    for i, row, last, start in spans:
        cont = encoded[i].cont
        columns = [last - first] + [start + t - first for t in range(len(cont) - 1)]
        logprob, greedy = _pick(logits[row, columns], cont)
        results[i] = Scored(logprob=logprob, greedy=greedy, tokens=len(cont))


def _forward_packed(model: Any, input_ids: Any, positions: Any, segment: Any, keep: int, device: Any) -> Any:
    """The logits of the last ``keep`` columns, under a mask that lets a token see the tokens of
    its own segment and the prompt's (segment 0), causally."""
    import torch

    width = input_ids.shape[1]
    causal = torch.ones((width, width), dtype=torch.bool).tril()
    same = segment[:, :, None] == segment[:, None, :]
    sees = causal & (same | (segment[:, None, :] == 0))
    dtype = model.get_input_embeddings().weight.dtype
    mask = torch.zeros(sees.shape, dtype=dtype).masked_fill(~sees, torch.finfo(dtype).min)[:, None]
    kwargs = {
        "input_ids": input_ids.to(device),
        "attention_mask": mask.to(device),
        "position_ids": positions.to(device),
    }
    if _takes_logits_to_keep(model):
        return model(**kwargs, logits_to_keep=keep).logits
    return model(**kwargs).logits[:, -keep:]


def _takes_logits_to_keep(model: Any) -> bool:
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return "logits_to_keep" in inspect.signature(base.forward).parameters


def _sliding_window(model: Any) -> int | None:
    """The attention window of a model with sliding-window layers: a custom mask would lift it."""
    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    window = getattr(config, "sliding_window", None)
    if getattr(config, "use_sliding_window", True) is False:
        return None
    return window if isinstance(window, int) and window > 0 else None


def _honours_packing(model: Any, tokenizer: Any) -> bool:
    """Whether a packed row scores as separate sequences on this model: a tiny prompt with two
    options run both ways. Models whose attention ignores a custom 4D mask or position ids
    (flash attention, ALiBi from a 2D mask...) fail it and take the full pass."""
    import torch

    context, *options = PROBE_TEXT
    memo: dict[str, tuple[int, ...]] = {}
    encoded = [_encode(tokenizer, context, option, memo) for option in options]
    if len({e.ctx for e in encoded}) != 1 or not all(len(e.cont) > 1 for e in encoded):
        return False
    tolerance = 1e-3 if model.get_input_embeddings().weight.dtype == torch.float32 else 0.1
    packed: list[Scored | None] = [None, None]
    single: list[Scored | None] = [None, None]
    try:
        with torch.inference_mode():
            _run_packed(model, tokenizer, [(encoded[0].ctx, [0, 1])], encoded, packed, ScoreStats())
            for i, e in enumerate(encoded):
                _run_full(model, tokenizer, [(i, list(e.ctx + e.cont)[:-1], e.cont)], single, ScoreStats())
    except Exception as err:  # a model that rejects a 4D mask, position ids or logits_to_keep
        name = type(model).__name__
        log.warning("prefix sharing off: %s fails on a packed row (%s: %s)", name, type(err).__name__, err)
        return False
    worst = max(abs(a.logprob - b.logprob) for a, b in zip(packed, single, strict=True) if a and b)
    if worst > tolerance:
        log.warning(
            "prefix sharing off: %s scores a packed row %.3g away from separate sequences",
            type(model).__name__,
            worst,
        )
        return False
    return True


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
