"""openassistant loader: oasst message trees / flat messages -> prompt and best-ranked reply."""

from __future__ import annotations

import copy
import gzip
import json
from collections import Counter
from pathlib import Path

import pytest

from meadow.errors import InputError
from meadow.records import Record
from meadow.sources import Drop, get
from meadow.sources.openassistant import OpenAssistantOptions

FIXTURE = "openassistant/en_100_tree.first20trees.jsonl"


def run(*paths: Path, **options) -> list:
    return list(get("openassistant").load(list(paths), OpenAssistantOptions(**options)))


def records(items: list) -> list[Record]:
    return [it for it in items if isinstance(it, Record)]


def reasons(items: list) -> Counter:
    return Counter(it.reason for it in items if isinstance(it, Drop))


def read_trees(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def write_lines(path: Path, objs: list, *, compress: bool = False) -> Path:
    data = "".join(json.dumps(o, ensure_ascii=False) + "\n" for o in objs).encode("utf-8")
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def flatten(trees: list[dict]) -> list[dict]:
    """The flat messages layout (one message a line, with tree id and state) of a list of trees."""
    out = []
    for tree in trees:
        stack = [(tree["prompt"], None)]
        while stack:
            msg, parent = stack.pop()
            flat = {k: v for k, v in msg.items() if k != "replies"}
            if parent is not None:
                flat["parent_id"] = parent
            flat["message_tree_id"] = tree["message_tree_id"]
            flat["tree_state"] = tree["tree_state"]
            out.append(flat)
            stack.extend((reply, msg["message_id"]) for reply in reversed(msg.get("replies", [])))
    return out


def usable(reply: dict) -> bool:
    return (
        reply["role"] == "assistant"
        and not reply["deleted"]
        and reply["review_result"] is not False
        and not reply["synthetic"]
    )


def m(mid: str, role: str, text: str, **more) -> dict:
    msg = {
        "message_id": mid,
        "text": text,
        "role": role,
        "lang": "en",
        "review_result": True,
        "deleted": False,
        "synthetic": False,
        "replies": [],
    }
    msg.update(more)
    return msg


def tree(prompt: dict, state: str = "ready_for_export") -> dict:
    return {"message_tree_id": prompt["message_id"], "tree_state": state, "prompt": prompt}


def test_real_trees(raw_fixtures: Path):
    path = raw_fixtures / FIXTURE
    trees = read_trees(path)
    expected = {}
    for t in trees:
        p = t["prompt"]
        replies = [r for r in p["replies"] if usable(r)]
        if (
            t["tree_state"] == "ready_for_export"
            and p["lang"] == "en"
            and not p["deleted"]
            and p["review_result"] is not False
            and not p["synthetic"]
            and replies
        ):
            best = min(replies, key=lambda r: r["rank"])
            expected[f"openassistant:{p['message_id']}"] = (
                p["text"].strip(),
                best["text"].strip(),
                best["message_id"],
            )
    synthetic = sum(1 for t in trees if t["prompt"]["synthetic"])
    assert len(trees) == 20 and len(expected) == 18 and synthetic == 2

    items = run(path)
    recs = records(items)
    assert len(items) == len(trees)  # one unit per tree
    assert {r.id: (r.instruction, r.output, r.meta["reply_message_id"]) for r in recs} == expected
    assert reasons(items) == Counter({"synthetic": synthetic})
    assert all(r.input == "" and r.source == "openassistant" for r in recs)

    second = recs[0]  # the first tree is synthetic, so this is the second line
    assert second.id == f"openassistant:{trees[1]['prompt']['message_id']}"
    assert second.instruction == trees[1]["prompt"]["text"].strip()
    assert second.meta == {
        "message_tree_id": trees[1]["message_tree_id"],
        "reply_message_id": trees[1]["prompt"]["replies"][0]["message_id"],
        "rank": 0,
        "lang": "en",
    }
    # with synthetic data allowed, the two synthetic trees become records too
    assert len(records(run(path, drop_synthetic=False))) == 20


def test_real_trees_all_turns(raw_fixtures: Path):
    path = raw_fixtures / FIXTURE
    trees = read_trees(path)
    prompters = 0
    expected = 0
    for t in trees:
        stack = [t["prompt"]]
        while stack:
            msg = stack.pop()
            stack.extend(msg["replies"])
            if msg["role"] == "prompter":
                prompters += 1
                expected += bool(not msg["synthetic"] and any(usable(r) for r in msg["replies"]))
    items = run(path, turns="all")
    recs = records(items)
    assert len(items) == prompters
    assert len(recs) == expected
    # a second-turn prompt carries the conversation before it
    deep = next(r for r in recs if r.input)
    t = next(t for t in trees if t["message_tree_id"] == deep.meta["message_tree_id"])
    root = t["prompt"]
    parent = next(
        a for a in root["replies"] if any(p["message_id"] == deep.id.split(":", 1)[1] for p in a["replies"])
    )
    assert deep.input == f"User: {root['text'].strip()}\n\nAssistant: {parent['text'].strip()}"


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("turns", ["first", "all"])
def test_flat_messages_layout_gives_the_same_records(
    raw_fixtures: Path, tmp_path: Path, compress: bool, turns: str
):
    trees = read_trees(raw_fixtures / FIXTURE)
    flat = write_lines(tmp_path / "messages.jsonl.gz", flatten(trees), compress=compress)
    assert (flat.read_bytes()[:2] == b"\x1f\x8b") is compress
    from_trees = run(raw_fixtures / FIXTURE, turns=turns)
    from_flat = run(flat, turns=turns)
    assert records(from_flat) == records(from_trees)
    assert reasons(from_flat) == reasons(from_trees)


def test_flat_messages_out_of_order(raw_fixtures: Path, tmp_path: Path):
    trees = read_trees(raw_fixtures / FIXTURE)
    messages = flatten(trees)
    shuffled = messages[1::2] + messages[::2]  # children before parents, trees interleaved
    flat = write_lines(tmp_path / "messages.jsonl", shuffled)
    assert sorted(records(run(flat)), key=lambda r: r.id) == sorted(
        records(run(raw_fixtures / FIXTURE)), key=lambda r: r.id
    )


def test_gzipped_trees(raw_fixtures: Path, tmp_path: Path):
    gz = tmp_path / "2023-04-12_oasst_ready.trees.jsonl.gz"
    gz.write_bytes(gzip.compress((raw_fixtures / FIXTURE).read_bytes()))
    assert records(run(gz)) == records(run(raw_fixtures / FIXTURE))


def test_best_reply_choice_and_filters(tmp_path: Path):
    trees = [
        tree(
            m(
                "p1",
                "prompter",
                " Q1 ",
                replies=[
                    m("a1", "assistant", "deleted best", rank=0, deleted=True),
                    m("a2", "assistant", "failed review", rank=1, review_result=False),
                    m("a3", "assistant", "third", rank=3),
                    m("a4", "assistant", "second", rank=2),
                ],
            )
        ),
        tree(
            m(
                "p2",
                "prompter",
                "Q2",
                replies=[
                    m("b1", "assistant", "unranked first", rank=None),
                    m("b2", "assistant", "unranked second"),
                ],
            )
        ),
        tree(m("p3", "prompter", "Q3", lang="es", replies=[m("c1", "assistant", "A")])),
        tree(m("p4", "prompter", "Q4", replies=[m("d1", "assistant", "A", synthetic=True)])),
        tree(m("p5", "prompter", "Q5", replies=[])),
        tree(m("p6", "prompter", "Q6", replies=[m("f1", "assistant", "A")]), state="aborted_low_grade"),
        tree(m("p7", "prompter", "Q7", review_result=None, lang=None, replies=[m("g1", "assistant", "A")])),
    ]
    path = write_lines(tmp_path / "trees.jsonl", trees)
    items = run(path)
    assert [
        it.reason if isinstance(it, Drop) else (it.instruction, it.output, it.meta["rank"]) for it in items
    ] == [
        ("Q1", "second", 2),
        ("Q2", "unranked first", None),
        "not_english",
        "synthetic",
        "no_reply",
        "tree_not_ready",
        "not_english",
    ]
    assert items[2].where == f"{path}:3 (record p3)"
    spanish = records(run(path, lang="es"))
    assert [r.id for r in spanish] == ["openassistant:p3"]
    assert reasons(run(path, lang="es"))["other_language"] == 5  # p6 is tree_not_ready first
    assert len(records(run(path, lang=None, ready_only=False, drop_synthetic=False))) == 6
    with pytest.raises(ValueError):
        OpenAssistantOptions(turns="every")


def test_all_turns_history_and_broken_conversations(tmp_path: Path):
    prompt = m(
        "p",
        "prompter",
        "Q1",
        replies=[
            m(
                "a",
                "assistant",
                "A1",
                rank=0,
                replies=[m("q2", "prompter", "Q2", replies=[m("b", "assistant", "A2")])],
            ),
            m(
                "x",
                "assistant",
                "bad",
                rank=1,
                deleted=True,
                replies=[m("q3", "prompter", "Q3", replies=[m("c", "assistant", "A3")])],
            ),
        ],
    )
    path = write_lines(tmp_path / "trees.jsonl", [tree(prompt)])
    items = run(path, turns="all")
    assert [it.reason if isinstance(it, Drop) else it.id for it in items] == [
        "openassistant:p",
        "openassistant:q2",
        "deleted",
    ]
    assert items[1].input == "User: Q1\n\nAssistant: A1" and items[1].output == "A2"
    assert "earlier message x" in items[2].detail

    # flat layout with a message whose parent is missing from the file
    flat = flatten([tree(copy.deepcopy(prompt))])
    flat = [msg for msg in flat if msg["message_id"] != "a"]
    items = run(write_lines(tmp_path / "messages.jsonl", flat), turns="all")
    assert [it.reason if isinstance(it, Drop) else it.id for it in items] == [
        "no_reply",
        "deleted",
        "missing_parent",  # p's only other reply is deleted; q2 lost its parent
    ]
    assert items[2].detail == "parent message a is not in the file"


def test_wrong_types_and_missing_keys(tmp_path: Path):
    good = tree(m("ok", "prompter", "Q", replies=[m("r", "assistant", "A", rank=0)]))
    bad_rank = copy.deepcopy(good)
    bad_rank["prompt"]["replies"][0]["rank"] = "0"
    list_text = copy.deepcopy(good)
    list_text["prompt"]["text"] = ["Q"]
    no_text = copy.deepcopy(good)
    del no_text["prompt"]["replies"][0]["text"]
    bad_replies = copy.deepcopy(good)
    bad_replies["prompt"]["replies"] = {"0": "A"}
    bad_role = copy.deepcopy(good)
    bad_role["prompt"]["replies"][0]["role"] = "bot"
    no_prompt = {"message_tree_id": "t", "tree_state": "ready_for_export"}
    lines = [
        good,
        bad_rank,
        list_text,
        no_text,
        bad_replies,
        bad_role,
        no_prompt,
        ["not", "an", "object"],
        {"message_id": "m", "role": "prompter"},
        {"message_id": 5, "text": "T", "role": "prompter"},
    ]
    path = write_lines(tmp_path / "trees.jsonl", lines)
    items = run(path)
    assert [it.reason if isinstance(it, Drop) else "record" for it in items] == [
        "record",
        "invalid_tree",
        "invalid_tree",
        "invalid_tree",
        "invalid_tree",
        "invalid_tree",
        "invalid_tree",
        "invalid_message",
        "invalid_message",
        "invalid_message",
    ]
    drops = items[1:]
    assert all(d.malformed for d in drops)
    assert [d.where for d in drops] == [f"{path}:{n}" for n in range(2, 11)]
    assert drops[0].detail == "prompt.replies[0].rank: expected an integer or null, got str"
    assert drops[1].detail == "prompt.text: expected a string, got list"
    assert drops[2].detail == "prompt.replies[0]: missing key 'text'"
    assert drops[3].detail == "prompt.replies: expected a list, got dict"
    assert "prompt.replies[0].role" in drops[4].detail
    assert drops[5].detail == "tree: missing key 'prompt'"
    assert drops[6].detail == "message: expected a JSON object, got list"
    assert drops[7].detail == "message: missing key 'text'"
    assert drops[8].detail == "message.message_id: expected a string, got int"


def test_empty_and_ten_megabyte_text(tmp_path: Path):
    trees = [
        tree(m("p1", "prompter", "Q", replies=[m("a1", "assistant", "x" * 10_000_000, rank=0)])),
        tree(m("p2", "prompter", "y" * 10_000_000, replies=[m("a2", "assistant", "A", rank=0)])),
        tree(m("p3", "prompter", "   ", replies=[m("a3", "assistant", "A", rank=0)])),
        tree(m("p4", "prompter", "Q", replies=[m("a4", "assistant", "", rank=0)])),
    ]
    items = run(write_lines(tmp_path / "trees.jsonl", trees))
    assert [it.reason for it in items] == [
        "too_long_output",
        "too_long_instruction",
        "empty_instruction",
        "empty_output",
    ]


def test_truncated_line(raw_fixtures: Path, tmp_path: Path):
    data = (raw_fixtures / FIXTURE).read_bytes()
    path = tmp_path / "trees.jsonl"
    path.write_bytes(data[: len(data) - 500])  # the last tree is cut off
    seen = []
    with pytest.raises(InputError) as err:
        for it in get("openassistant").load([path], OpenAssistantOptions()):
            seen.append(it)
    assert err.value.line == 20 and str(path) in str(err.value)
    assert len(seen) == 19


def test_truncated_gzip(raw_fixtures: Path, tmp_path: Path):
    data = gzip.compress((raw_fixtures / FIXTURE).read_bytes())
    path = tmp_path / "trees.jsonl.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError) as err:
        run(path)
    assert "gzip" in err.value.message and err.value.line is not None


def test_invalid_utf8(tmp_path: Path):
    path = write_lines(
        tmp_path / "trees.jsonl",
        [tree(m("p1", "prompter", "Q", replies=[])), tree(m("p2", "prompter", "Q", replies=[]))],
    )
    path.write_bytes(path.read_bytes().replace(b'"p2"', b'"p\xff2"', 1))
    with pytest.raises(InputError) as err:
        run(path)
    assert err.value.line == 2 and "UTF-8" in err.value.message


def test_example_file_loads(examples_dir: Path):
    path = examples_dir / "openassistant" / "oasst_trees.jsonl"
    items = run(path)
    assert len(items) == len(read_trees(path))
    assert len(records(items)) == 2
    assert reasons(items) == Counter(
        {
            "not_english": 1,
            "deleted": 1,
            "review_failed": 1,
            "synthetic": 1,
            "no_reply": 1,
            "tree_not_ready": 1,
        }
    )
    first = records(items)[0]
    assert first.instruction == "What is the difference between a heart attack and a cardiac arrest?"
    assert first.output.startswith("A heart attack (myocardial infarction)")  # not the deleted first reply
    assert len(records(run(path, turns="all"))) == 3
