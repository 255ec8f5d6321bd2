"""OpenAssistant oasst1: a prompter's message answered by the best-ranked assistant reply.

Format read: the oasst1 release (HF ``OpenAssistant/oasst1``, 2023-04-12) as JSON Lines,
plain or gzip-compressed (detected from the file's first bytes), in either published layout;
each line is recognised by its keys, so one loader reads both:

- message trees (``2023-04-12_oasst_ready.trees.jsonl.gz``): one conversation tree a line,
  ``{"message_tree_id", "tree_state", "prompt": {message_id, text, role, lang,
  review_result, deleted, synthetic, rank?, replies: [ ...same, recursively ]}}``;
  also the earlier exports of the same shape (the test fixture, a March 2023 English
  subsample from the Open-Assistant repository).
- flat messages (``2023-04-12_oasst_ready.messages.jsonl.gz``): one message a line with
  ``message_id, parent_id, message_tree_id, tree_state, text, role, lang, rank,
  review_result, deleted, synthetic, ...``. The messages of a file are joined into their
  trees by ``parent_id`` in memory (the release has ~85k messages; only ids, flags, rank
  and text are kept), and the trees are then read exactly like the tree layout, in the
  order their root messages appear.

Required message fields: ``message_id``, ``text``, ``role`` (``prompter``/``assistant``);
``lang``, ``rank``, ``review_result``, ``parent_id`` may be null or absent (the exports
leave out null values), ``deleted`` and ``synthetic`` default to false.

Task framing: one record per prompter message in English (option ``lang``; null for any
language) that has a usable assistant reply, i.e. one that is not deleted, whose
``review_result`` is not false and, with ``drop_synthetic``, that is not synthetic:

- instruction: the prompter's text,
- input: empty for a conversation's first message (``turns: first``, the default: one
  record per tree, as medAlpaca's 9,209 OpenAssistant rows suggest). With ``turns: all``
  every prompter message is a unit, and a deeper one gets the conversation before it in
  ``input``, one turn per paragraph: ``"User: <text>\\n\\nAssistant: <text>\\n\\nUser: ..."``,
- output: the best-ranked usable reply (the lowest ``rank``, 0 being the best; where no
  usable reply is ranked, the first one in the file).

Trees whose ``tree_state`` is given and is not ``ready_for_export`` (the ``oasst_all``
files) are dropped as ``tree_not_ready`` (option ``ready_only``). Other drops: ``deleted``
and ``review_failed`` (the prompter message or, with ``turns: all``, an earlier message
of the conversation is deleted or failed review), ``not_english`` (or ``other_language``
when ``lang`` is not "en"), ``synthetic`` (a synthetic prompter message, or all usable
replies synthetic), ``no_reply``, ``missing_parent`` (flat layout, ``turns: all``: a
message whose parent is not in the file), the ``make_record`` checks, and malformed input:
``invalid_tree`` (a tree line that is not a tree, or any message in it with a missing or
mistyped field, named by its path in the tree), ``invalid_message`` and
``duplicate_message`` (flat layout), ``root_not_prompter``.
Record id: ``openassistant:<prompter message_id>``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from meadow.sources import Drop, Item, Options, register
from meadow.sources._common import iter_jsonl, make_record, where

SOURCE = "openassistant"
READY = "ready_for_export"

CITATION = """@inproceedings{kopf2023openassistant,
  title = {OpenAssistant Conversations -- Democratizing Large Language Model Alignment},
  author = {K{\\"o}pf, Andreas and Kilcher, Yannic and von R{\\"u}tte, Dimitri and Anagnostidis, Sotiris and
            Tam, Zhi Rui and Stevens, Keith and Barhoum, Abdullah and Nguyen, Duc Minh and
            Stanley, Oliver and Nagyfi, Rich{\\'a}rd and ES, Shahul and Suri, Sameer and Glushkov, David and
            Dantuluri, Arnav and Maguire, Andrew and Schuhmann, Christoph and Nguyen, Huu and
            Mattick, Alexander},
  booktitle = {Advances in Neural Information Processing Systems 36 (Datasets and Benchmarks Track)},
  year = {2023},
  url = {https://arxiv.org/abs/2304.07327}
}"""


class OpenAssistantOptions(Options):
    lang: str | None = "en"
    """Keep prompter messages in this language (oasst ``lang`` code); null keeps every language."""
    turns: Literal["first", "all"] = "first"
    """``first``: each tree's opening message only; ``all``: every prompter message."""
    drop_synthetic: bool = True
    """Drop synthetic (model-written) messages."""
    ready_only: bool = True
    """Drop trees whose ``tree_state`` is not ``ready_for_export``."""


@register(
    "openassistant",
    options=OpenAssistantOptions,
    per_file=True,
    produces="records",
    summary="OpenAssistant oasst1 conversation trees: prompter message -> best-ranked assistant reply",
    license="Apache-2.0",
    citation=CITATION,
)
def load(paths: Sequence[Path], options: OpenAssistantOptions) -> Iterator[Item]:
    for path in paths:
        yield from _load_file(path, options)


@dataclass(slots=True)
class _Msg:
    id: str
    text: str
    role: str
    lang: str | None
    deleted: bool
    review: bool | None
    synthetic: bool
    rank: int | None
    parent: str | None
    tree: str | None
    tree_state: str | None
    at: str
    children: list[_Msg] = field(default_factory=list)


class _Bad(Exception):
    """A message or tree with a missing or mistyped field; the text names it."""


def _load_file(path: Path, options: OpenAssistantOptions) -> Iterator[Item]:
    flat: dict[str, _Msg] = {}
    for n, obj in iter_jsonl(path):
        if isinstance(obj, dict) and (
            "prompt" in obj or "message_tree_id" in obj and "message_id" not in obj
        ):
            try:
                root = _parse_tree(obj, path, n)
            except _Bad as err:
                yield Drop("invalid_tree", where(path, n), str(err), malformed=True)
                continue
            yield from _units(root, options)
            continue
        at = where(path, n)
        try:
            msg = _parse_message(obj, "message", at, flat=True)
        except _Bad as err:
            yield Drop("invalid_message", at, str(err), malformed=True)
            continue
        if msg.id in flat:
            yield Drop(
                "duplicate_message",
                at,
                f"message_id {msg.id} already read at {flat[msg.id].at}",
                malformed=True,
            )
            continue
        flat[msg.id] = msg
    if flat:
        yield from _join(flat, options)


# ---------------------------------------------------------------- parsing


def _type(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _field(obj: dict[str, Any], key: str, label: str, kind: str) -> Any:
    """One field, type-checked; kind 'str' is required, the others may be null or absent."""
    value = obj.get(key)
    if kind == "str":
        if key not in obj:
            raise _Bad(f"{label}: missing key {key!r}")
        if not isinstance(value, str):
            raise _Bad(f"{label}.{key}: expected a string, got {_type(value)}")
    elif value is None:
        return False if kind == "bool" else None
    elif kind == "str?" and not isinstance(value, str):
        raise _Bad(f"{label}.{key}: expected a string or null, got {_type(value)}")
    elif kind in ("bool", "bool?") and not isinstance(value, bool):
        raise _Bad(f"{label}.{key}: expected true/false, got {_type(value)}")
    elif kind == "int?":
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if type(value) is not int:
            raise _Bad(f"{label}.{key}: expected an integer or null, got {_type(value)}")
    return value


def _parse_message(obj: Any, label: str, at: str, *, flat: bool) -> _Msg:
    if not isinstance(obj, dict):
        raise _Bad(f"{label}: expected a JSON object, got {_type(obj)}")
    msg = _Msg(
        id=_field(obj, "message_id", label, "str"),
        text=_field(obj, "text", label, "str"),
        role=_field(obj, "role", label, "str"),
        lang=_field(obj, "lang", label, "str?"),
        deleted=_field(obj, "deleted", label, "bool"),
        review=_field(obj, "review_result", label, "bool?"),
        synthetic=_field(obj, "synthetic", label, "bool"),
        rank=_field(obj, "rank", label, "int?"),
        parent=_field(obj, "parent_id", label, "str?"),
        tree=_field(obj, "message_tree_id", label, "str?") if flat else None,
        tree_state=_field(obj, "tree_state", label, "str?") if flat else None,
        at=at,
    )
    if msg.role not in ("prompter", "assistant"):
        raise _Bad(f"{label}.role: expected 'prompter' or 'assistant', got {msg.role!r}")
    return msg


def _parse_tree(obj: dict[str, Any], path: Path, line: int) -> _Msg:
    tree_id = _field(obj, "message_tree_id", "tree", "str?")
    state = _field(obj, "tree_state", "tree", "str?")
    at = where(path, line)
    if "prompt" not in obj:
        raise _Bad("tree: missing key 'prompt'")
    root = _parse_message(obj["prompt"], "prompt", at, flat=False)
    root.tree, root.tree_state = tree_id or root.id, state
    stack = [(root, obj["prompt"], "prompt")]
    while stack:
        msg, raw, label = stack.pop()
        replies = raw.get("replies", [])
        if replies is None:
            replies = []
        if not isinstance(replies, list):
            raise _Bad(f"{label}.replies: expected a list, got {_type(replies)}")
        for i, reply in enumerate(replies):
            child_label = f"{label}.replies[{i}]"
            child = _parse_message(reply, child_label, at, flat=False)
            child.tree, child.tree_state = root.tree, state
            msg.children.append(child)
            stack.append((child, reply, child_label))
    return root


def _join(messages: dict[str, _Msg], options: OpenAssistantOptions) -> Iterator[Item]:
    """Link flat messages to their parents (file order) and read each tree from its root."""
    roots: list[_Msg] = []
    orphans: list[_Msg] = []
    for msg in messages.values():
        if msg.parent is None:
            msg.tree = msg.tree or msg.id
            roots.append(msg)
        elif msg.parent in messages:
            messages[msg.parent].children.append(msg)
        else:
            orphans.append(msg)
    reached: set[str] = set()
    for root in roots:
        for msg, _ in _walk(root):
            msg.tree = msg.tree or root.tree
            reached.add(msg.id)
        yield from _units(root, options)
    if options.turns == "first":
        return
    for orphan in orphans:
        for msg, _ in _walk(orphan):
            reached.add(msg.id)
            if msg.role == "prompter":
                yield Drop(
                    "missing_parent", _where(msg), f"parent message {orphan.parent} is not in the file"
                )
    for msg in messages.values():
        if msg.id not in reached and msg.role == "prompter":
            yield Drop("missing_parent", _where(msg), "its chain of parent messages never reaches a root")


# ---------------------------------------------------------------- framing


def _walk(root: _Msg) -> Iterator[tuple[_Msg, list[_Msg]]]:
    """Every message of a tree, depth first in reply order, with its ancestors (root first)."""
    stack: list[tuple[_Msg, list[_Msg]]] = [(root, [])]
    while stack:
        msg, ancestors = stack.pop()
        yield msg, ancestors
        below = [*ancestors, msg]
        stack.extend((child, below) for child in reversed(msg.children))


def _where(msg: _Msg) -> str:
    return where(msg.at, record=msg.id)


def _units(root: _Msg, options: OpenAssistantOptions) -> Iterator[Item]:
    if options.turns == "first":
        yield _judge(root, [], options)
        return
    for msg, ancestors in _walk(root):
        if msg.role == "prompter" or msg is root:
            yield _judge(msg, ancestors, options)


def _judge(msg: _Msg, ancestors: list[_Msg], options: OpenAssistantOptions) -> Item:
    at = _where(msg)
    if options.ready_only and msg.tree_state is not None and msg.tree_state != READY:
        return Drop("tree_not_ready", at, f"tree_state {msg.tree_state}")
    if msg.role != "prompter":
        return Drop("root_not_prompter", at, f"the tree starts with a {msg.role} message", malformed=True)
    for earlier in ancestors:
        if earlier.deleted:
            return Drop("deleted", at, f"earlier message {earlier.id} in the conversation is deleted")
        if earlier.review is False:
            return Drop(
                "review_failed", at, f"earlier message {earlier.id} in the conversation failed review"
            )
    if msg.deleted:
        return Drop("deleted", at, "prompter message deleted")
    if msg.review is False:
        return Drop("review_failed", at, "prompter message failed review")
    if options.lang is not None and msg.lang != options.lang:
        reason = "not_english" if options.lang == "en" else "other_language"
        return Drop(reason, at, f"lang {msg.lang}")
    if options.drop_synthetic and msg.synthetic:
        return Drop("synthetic", at, "synthetic prompter message")
    usable = [c for c in msg.children if c.role == "assistant" and not c.deleted and c.review is not False]
    replies = [c for c in usable if not (options.drop_synthetic and c.synthetic)]
    if not replies:
        if usable:
            return Drop("synthetic", at, f"all {len(usable)} usable replies are synthetic")
        return Drop("no_reply", at, f"no usable assistant reply among {len(msg.children)}")
    ranked = [c for c in replies if c.rank is not None]
    best = min(ranked, key=lambda c: c.rank) if ranked else replies[0]
    history = "\n\n".join(
        f"{'User' if m.role == 'prompter' else 'Assistant'}: {m.text.strip()}" for m in ancestors
    )
    return make_record(
        at,
        instruction=msg.text.strip(),
        input=history,
        output=best.text.strip(),
        source=SOURCE,
        id=f"{SOURCE}:{msg.id}",
        meta={"message_tree_id": msg.tree, "reply_message_id": best.id, "rank": best.rank, "lang": msg.lang},
    )
