"""Pydantic validation errors of a YAML file, as the lines a person reads: ``file:line: key: what``.

pydantic reports one error per branch of a union (``n: "ten"`` gives ``n.int`` and
``n.literal['all']``) and puts a union's tag in the key path (``fetch.0.url.sha256``). Here the
branches of one value collapse into one line ("expected a whole number or 'all', got 'ten'"),
tags never show, and an unknown key names the closest known one ("did you mean near_dedup?").
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import yaml

Loc = tuple[Any, ...]

# what a value of the branch that failed should have been, by pydantic error type
_EXPECTED = {
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "string_type": "a string",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "none_required": "null",
}


def _tags(data: Any, loc: Loc, missing: bool) -> list[int]:
    """The positions in ``loc`` that are no key or index of ``data``: a union's branch tags
    (``int``, ``literal['all']``, a discriminator value such as ``url``). A missing key is no tag."""
    tags: list[int] = []
    end = len(loc) - 1 if missing else len(loc)
    cur = data
    for i in range(end):
        key = loc[i]
        nxt = loc[i + 1] if i + 1 < end else None
        if isinstance(cur, dict):
            # a tag that is also a key here (fetch entry {kind: url, url: ...}): the next key is
            # then one of this mapping's too, while the tag's value is a plain string
            if key not in cur or (nxt is not None and nxt in cur and not isinstance(cur[key], (dict, list))):
                tags.append(i)
                continue
            cur = cur[key]
        elif isinstance(cur, list) and isinstance(key, int) and 0 <= key < len(cur):
            cur = cur[key]
        else:
            tags.append(i)
    return tags


def _expected(error: dict[str, Any], deeper: bool, tag: str) -> str:
    """What the value should have been, in the terms of one union branch."""
    if tag.startswith("list["):
        return "a list of strings" if tag == "list[str]" else "a list"
    if deeper:  # the branch's type matched, something inside it did not: name the branch
        return "a mapping" if tag[:1].isupper() else f"a {tag}"
    if error["type"] == "literal_error":
        return str(error.get("ctx", {}).get("expected", error["msg"].removeprefix("Input should be ")))
    return _EXPECTED.get(error["type"]) or error["msg"].removeprefix("Value error, ").removeprefix(
        "Input should be "
    )


def _got(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return ""
    shown = repr(value)
    return f", got {shown if len(shown) <= 60 else shown[:57] + '...'}"


def messages(
    errors: Sequence[dict[str, Any]], data: Any, known_keys: Callable[[Loc], Sequence[str]]
) -> Iterator[tuple[Loc, str]]:
    """(key path, message) per problem. ``known_keys(loc)``: the keys a mapping at ``loc`` may
    have, to suggest the closest to an unknown key."""
    unions: dict[Loc, list[tuple[dict[str, Any], int]]] = {}
    plain: list[tuple[Loc, dict[str, Any]]] = []
    for e in errors:
        loc = tuple(e["loc"])
        tags = _tags(data, loc, missing=e["type"] == "missing")
        if tags:
            unions.setdefault(loc[: tags[0]], []).append((e, tags[0]))
        plain.append((tuple(p for i, p in enumerate(loc) if i not in tags), e))
    collapsed = {prefix for prefix, branches in unions.items() if len({e["loc"][t] for e, t in branches}) > 1}
    done: set[Loc] = set()
    for loc, e in plain:
        prefix = next((p for p in collapsed if tuple(e["loc"][: len(p)]) == p), None)
        if prefix is not None:
            if prefix not in done:
                done.add(prefix)
                expected: list[str] = []
                for err, t in unions[prefix]:
                    phrase = _expected(err, len(err["loc"]) > t + 1, str(err["loc"][t]))
                    if phrase not in expected:
                        expected.append(phrase)
                yield prefix, f"expected {' or '.join(expected)}{_got(unions[prefix][0][0]['input'])}"
            continue
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            close = difflib.get_close_matches(str(loc[-1]), list(known_keys(loc[:-1])), n=1)
            msg = "unknown key" + (f"; did you mean {close[0]}?" if close else "")
        elif e["type"] == "missing":
            msg = "required key is missing"
        elif e["type"] in _EXPECTED:
            msg = f"expected {_EXPECTED[e['type']]}{_got(e['input'])}"
        yield loc, msg


def schema_keys(schema: dict[str, Any], loc: Loc) -> list[str]:
    """The keys a mapping at key path ``loc`` may have, by the JSON Schema ``schema``."""
    defs = schema.get("$defs", {})

    def expand(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
        if "$ref" in node:
            yield from expand(defs[node["$ref"].rsplit("/", 1)[-1]])
        elif "anyOf" in node or "oneOf" in node:
            for sub in node.get("anyOf", []) + node.get("oneOf", []):
                yield from expand(sub)
        else:
            yield node

    nodes = [schema]
    for key in loc:
        found = []
        for node in (n for m in nodes for n in expand(m)):
            if isinstance(key, int) and isinstance(node.get("items"), dict):
                found.append(node["items"])
            elif key in node.get("properties", {}):
                found.append(node["properties"][key])
            elif isinstance(node.get("additionalProperties"), dict):
                found.append(node["additionalProperties"])
        nodes = found
    return sorted({k for m in nodes for n in expand(m) for k in n.get("properties", {})})


def yaml_line(node: Any, loc: Loc) -> int | None:
    """The 1-based line of the YAML node at key path ``loc`` (or its closest parent)."""
    line = node.start_mark.line + 1 if node is not None else None
    for i, key in enumerate(loc):
        key = str(key)
        if isinstance(node, yaml.MappingNode):
            keys = {k.value for k, _ in node.value}
            if key not in keys or (i + 1 < len(loc) and str(loc[i + 1]) in keys):
                # Not a key of this mapping here: a missing key or the index of a one-entry
                # shorthand; the next key may still be found in this mapping.
                continue
            for k, v in node.value:
                if k.value == key:
                    line, node = k.start_mark.line + 1, v
                    break
        elif isinstance(node, yaml.SequenceNode) and key.isdigit() and int(key) < len(node.value):
            node = node.value[int(key)]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def yaml_error(path: Any, err: yaml.YAMLError) -> str:
    """A YAML syntax error as ``file:line: invalid YAML: problem`` with the line and a caret
    (pyyaml's own text names ``"<unicode string>"`` when it parsed a string, not the file)."""
    mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
    if mark is None:
        return f"{path}: invalid YAML: {err}"
    problem = getattr(err, "problem", None) or str(err)
    context, where = getattr(err, "context", None), getattr(err, "context_mark", None)
    if context and where is not None and where is not mark:
        problem += f" ({context} at line {where.line + 1}, column {where.column + 1})"
    snippet = mark.get_snippet()
    return f"{path}:{mark.line + 1}:{mark.column + 1}: invalid YAML: {problem}" + (
        f"\n{snippet}" if snippet else ""
    )
