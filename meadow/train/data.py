"""Training examples: read medAlpaca-format records, render the prompt, tokenize, label, split.

Each record becomes ``prompt + output + EOS``, where the prompt is the template rendered with the
instruction and input (what a model completes at inference). The prompt and the output are
tokenized separately and concatenated, so the boundary is exact: with ``train_on_inputs`` every
token carries its label (medAlpaca's default); without it (completion-only loss) the prompt
tokens get label -100. Examples longer than ``model_max_length`` are cut at the end (as
medAlpaca does, losing the EOS) and counted; a completion-only example with no response token
left is dropped and counted. Nothing is lost silently: ``Examples.stats`` says what happened.
"""

from __future__ import annotations

import json
import logging
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from meadow.errors import MeadowError
from meadow.schemas.outputs import JSON_NAME
from meadow.train.prompt import PromptTemplate

log = logging.getLogger(__name__)

FIELDS = ("instruction", "input", "output")
IGNORE = -100


def data_file(path: str | Path) -> Path:
    """``path`` itself, or the ``merged_medical_meadow.json`` of a build directory."""
    path = Path(path)
    if path.is_dir():
        path = path / JSON_NAME
    if not path.is_file():
        raise MeadowError(f"{path}: no such data file (a medAlpaca-format JSON, or a build directory)")
    return path


def load_records(path: str | Path) -> list[dict[str, str]]:
    """The ``instruction``/``input``/``output`` of each record of a JSON array (or JSON lines) file.

    A missing or non-string field is an error naming the file and the record."""
    path = data_file(path)
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix == ".jsonl":
            rows = [json.loads(line) for line in text.splitlines() if line.strip()]
        else:
            rows = json.loads(text)
    except json.JSONDecodeError as err:
        raise MeadowError(f"{path}:{err.lineno}: invalid JSON: {err.msg}") from None
    if not isinstance(rows, list):
        raise MeadowError(f"{path}: expected a JSON array of records")
    records = []
    for i, row in enumerate(rows):
        where = f"{path}: record {i}" + (
            f" (id {row['id']})" if isinstance(row, dict) and "id" in row else ""
        )
        if not isinstance(row, dict):
            raise MeadowError(f"{where}: not an object")
        missing = [f for f in FIELDS if f not in row]
        if missing:
            raise MeadowError(f"{where}: missing field(s) {', '.join(missing)}")
        bad = [f for f in FIELDS if not isinstance(row[f], str)]
        if bad:
            raise MeadowError(f"{where}: field(s) {', '.join(bad)} must be strings")
        if not row["output"].strip():
            raise MeadowError(f"{where}: empty output")
        records.append({f: row[f] for f in FIELDS})
    if not records:
        raise MeadowError(f"{path}: no records")
    return records


def split(records: list[Any], val_set_size: float, seed: int = 42) -> tuple[list[Any], list[Any]]:
    """Shuffle with ``seed`` and hold out ``val_set_size`` records (a fraction below 1, or a count)."""
    if val_set_size <= 0:
        return list(records), []
    n_val = int(val_set_size) if val_set_size >= 1 else max(1, round(len(records) * val_set_size))
    if n_val >= len(records):
        raise MeadowError(f"val_set_size {val_set_size} leaves no training records (of {len(records)})")
    order = list(records)
    random.Random(seed).shuffle(order)
    return order[n_val:], order[:n_val]


def template_length(template: PromptTemplate, tokenizer: Any) -> int:
    """Tokens of the template alone (primer and markers, empty fields)."""
    text = f"{template.primer}{template.instruction}{template.input}{template.output}"
    return len(tokenizer(text)["input_ids"])


@dataclass
class Examples:
    """Tokenized examples (``input_ids``, ``attention_mask``, ``labels``) and what tokenizing did."""

    items: list[dict[str, list[int]]]
    stats: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, list[int]]:
        return self.items[i]


def tokenize(
    records: list[dict[str, str]],
    tokenizer: Any,
    template: PromptTemplate,
    *,
    model_max_length: int,
    train_on_inputs: bool = True,
) -> Examples:
    """Render, tokenize and label ``records`` (see the module docstring)."""
    if tokenizer.eos_token_id is None:
        raise MeadowError("the tokenizer has no EOS token, which every example must end with")
    needed = template_length(template, tokenizer)
    if model_max_length <= needed:
        raise MeadowError(
            f"model_max_length {model_max_length} is too short: the prompt template alone is {needed} tokens"
        )
    items = []
    stats = {"records": len(records), "truncated": 0, "dropped_no_response": 0, "longest": 0, "tokens": 0}
    for record in records:
        prompt = template.render(record["instruction"], record["input"])
        prompt_ids = tokenizer(prompt)["input_ids"]  # special tokens (BOS) as the model expects
        answer_ids = tokenizer(record["output"], add_special_tokens=False)["input_ids"]
        ids = prompt_ids + answer_ids + [tokenizer.eos_token_id]
        stats["longest"] = max(stats["longest"], len(ids))
        if len(ids) > model_max_length:
            stats["truncated"] += 1
            ids = ids[:model_max_length]
        labels = list(ids) if train_on_inputs else [IGNORE] * len(prompt_ids) + ids[len(prompt_ids) :]
        labels = labels[: len(ids)]
        if all(label == IGNORE for label in labels):
            stats["dropped_no_response"] += 1
            continue
        stats["tokens"] += len(ids)
        items.append({"input_ids": ids, "attention_mask": [1] * len(ids), "labels": labels})
    stats["examples"] = len(items)
    if stats["truncated"]:
        log.warning(
            "%d of %d examples are longer than model_max_length %d (longest %d tokens) and were cut "
            "at the end, losing their EOS",
            stats["truncated"],
            len(records),
            model_max_length,
            stats["longest"],
        )
    if stats["dropped_no_response"]:
        log.warning(
            "%d examples dropped: their prompt fills model_max_length %d, leaving no response token to "
            "train on (completion-only loss)",
            stats["dropped_no_response"],
            model_max_length,
        )
    if not items:
        raise MeadowError("no example left to train on (see the warnings above)")
    return Examples(items, stats)
