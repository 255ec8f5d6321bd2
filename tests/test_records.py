import pytest
from pydantic import ValidationError

from meadow.records import MAX_TEXT_CHARS, Passage, Record, describe_validation_error
from meadow.sources import Drop
from meadow.sources._common import content_id, html_to_text, make_record

GOOD = {
    "instruction": "Answer this question truthfully",
    "input": "What is X?",
    "output": "X is Y.",
    "source": "test",
    "id": "test:1",
}


def test_record_round_trip():
    r = Record(**GOOD)
    assert r.to_alpaca() == {k: GOOD[k] for k in ("instruction", "input", "output", "source", "id")}
    assert r.meta == {}


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("instruction", "", "instruction: must not be empty"),
        ("output", "  \n", "output: must not be empty"),
        ("output", 3, "output: Input should be a valid string"),
        ("input", None, "input: Input should be a valid string"),
        ("input", "a\x00b", "input: contains a NUL byte"),
        ("id", "", "id: must not be empty"),
        ("output", "x" * (MAX_TEXT_CHARS + 1), "output: longer than"),
    ],
)
def test_record_rejects_with_field_named(field, value, message):
    with pytest.raises(ValidationError) as info:
        Record(**{**GOOD, field: value})
    assert message in describe_validation_error(info.value)


def test_record_is_strict_about_unknown_fields():
    with pytest.raises(ValidationError, match="extra"):
        Record(**GOOD, answer="x")


def test_empty_input_is_allowed():
    assert Record(**{**GOOD, "input": ""}).input == ""


def test_passage_task_is_checked():
    Passage(text="Front: a\nBack: b", source="anki/x", id="anki/x:1", task="flashcard")
    with pytest.raises(ValidationError, match="task"):
        Passage(text="t", source="s", id="s:1", task="poem")


def test_make_record_turns_failures_into_counted_drops():
    assert isinstance(make_record("f.json (record 3)", **GOOD), Record)
    empty = make_record("f.json (record 3)", **{**GOOD, "output": ""})
    assert empty == Drop("empty_output", "f.json (record 3)", "output: must not be empty or only whitespace")
    bad = make_record("f.json (record 4)", **{**GOOD, "output": ["a"]})
    assert isinstance(bad, Drop) and bad.malformed and bad.reason == "invalid_record"
    long = make_record("f.json (record 5)", **{**GOOD, "input": "x" * (10 << 20)})
    assert isinstance(long, Drop) and long.reason == "too_long_input" and not long.malformed


def test_content_id_is_stable_and_content_based():
    assert content_id("s", "a", "b") == content_id("s", "a", "b")
    assert content_id("s", "a", "b") != content_id("s", "ab", "")
    assert content_id("s", "a").startswith("s:")


def test_html_to_text():
    html = (
        "<p>What does &quot;backprop&quot; mean?</p>\n<p>Is <b>it</b>\nthe same?</p>"
        "<ul><li>one</li><li>two</li></ul><pre><code>x = 1\n  y = 2\n</code></pre>"
        '<img src="a.png">after<br>next &amp; last'
    )
    assert html_to_text(html) == (
        'What does "backprop" mean?\n\nIs it the same?\n\n- one\n- two\n\n'
        "x = 1\n  y = 2\n\nafter\nnext & last"
    )
    assert html_to_text("plain text") == "plain text"
    assert html_to_text("<ul><li><p>first</p></li><li><p>second</p><p>more</p></li></ul>") == (
        "- first\n\n- second\n\nmore"
    )
