"""Tests of the HTML-to-Markdown conversion of Stack Exchange bodies (meadow.sources._html)."""

from __future__ import annotations

import re
from pathlib import Path

import lxml.html
import pytest
from lxml import etree

from meadow.sources._html import html_to_markdown

SITE = "https://health.stackexchange.com/"


def test_ordered_list_keeps_its_numbers_from_start() -> None:
    html = '<p>Then:</p><ol start="11"><li>Grind the beans.</li><li>Brew for <em>4</em> minutes.</li></ol>'
    assert html_to_markdown(html) == "Then:\n\n11. Grind the beans.\n12. Brew for *4* minutes."
    assert html_to_markdown("<ol><li>one</li><li>two</li></ol>") == "1. one\n2. two"


def test_ordered_list_continued_after_a_paragraph() -> None:
    # Stack Exchange writes a list broken by a paragraph as a second <ol start="N">.
    html = '<ol><li>First.</li></ol><p>An aside.</p><ol start="2"><li>Second.</li><li>Third.</li></ol>'
    assert html_to_markdown(html) == "1. First.\n\nAn aside.\n\n2. Second.\n3. Third."


@pytest.mark.parametrize("tag", ["strike", "s", "del"])
def test_struck_text_goes(tag: str) -> None:
    html = f"<p>These coffees <{tag}>contain acrylamide, a carcinogen,</{tag}> are fine.</p>"
    assert html_to_markdown(html) == "These coffees are fine."
    assert html_to_markdown(f"<p><{tag}>Retracted.</{tag}></p><p>Kept.</p>") == "Kept."


def test_code_stays_a_block_verbatim() -> None:
    html = (
        "<p>Run <code>my_var_name</code>:</p>"
        "<pre><code>def f(x):\n    return x_1 * 2\n\n\n\nprint(f(3))  \n</code></pre><p>Done.</p>"
    )
    assert html_to_markdown(html) == (
        "Run `my_var_name`:\n\n```\ndef f(x):\n    return x_1 * 2\n\n\n\nprint(f(3))\n```\n\nDone."
    )


def test_nested_lists() -> None:
    html = "<ul><li>Outer<ul><li>inner one</li><li>inner two</li></ul></li><li>Second</li></ul>"
    assert html_to_markdown(html) == "- Outer\n  - inner one\n  - inner two\n- Second"
    html = "<ol><li>Step<ol><li>sub a</li><li>sub b</li></ol></li><li>Next</li></ol>"
    assert html_to_markdown(html) == "1. Step\n   1. sub a\n   2. sub b\n2. Next"
    html = "<ul><li><p>Loose item.</p><p>Second paragraph.</p></li><li><p>Next.</p></li></ul>"
    assert html_to_markdown(html) == "- Loose item.\n\n  Second paragraph.\n- Next."


def test_blockquote_table_heading_rule_and_breaks() -> None:
    html = "<blockquote><p>Quoted\nline.</p><p>Two.</p></blockquote><p>After.</p>"
    assert html_to_markdown(html) == "> Quoted line.\n>\n> Two.\n\nAfter."
    table = "<table><tr><th>Drug</th><th>Dose</th></tr><tr><td>aspirin</td><td>81&nbsp;mg</td></tr></table>"
    assert html_to_markdown(table) == "| Drug | Dose |\n| --- | --- |\n| aspirin | 81 mg |"
    html = "<h2>Dosing</h2><p>Line one<br>\nline two<br/>   line three</p><hr><p>end</p>"
    assert html_to_markdown(html) == "## Dosing\n\nLine one\nline two\nline three\n\n---\n\nend"


def test_links_keep_their_text_images_go() -> None:
    html = (
        '<p>See <a href="/questions/12/fever">this question</a>, '
        '<a href="https://x.org/a_b">https://x.org/a_b</a> and '
        '<a href="https://i.sstatic.net/big.png"><img src="https://i.sstatic.net/x.png" '
        'alt="enter image description here"></a>.</p>'
    )
    assert html_to_markdown(html, base=SITE) == (
        "See [this question](https://health.stackexchange.com/questions/12/fever), https://x.org/a_b and ."
    )
    assert html_to_markdown('<a href="/q/1">q</a>') == "[q](/q/1)"  # no base: the target as written


def test_text_is_clean_and_unescaped() -> None:
    html = (
        "<p>10<sup>6</sup> cells/m<sup>2</sup>, H<sub>2</sub>O, e<sup>-x</sup>; "
        "snake_case, 2*3*4 &amp; &lt;5</p>"
    )
    assert html_to_markdown(html) == "10^6 cells/m^2, H2O, e^-x; snake_case, 2*3*4 & <5"
    assert html_to_markdown("<p>a</p>\n\n\n\n<p></p><p>b&nbsp;</p>   ") == "a\n\nb"
    assert html_to_markdown("plain text with\nnewline") == "plain text with newline"
    assert html_to_markdown("") == ""
    assert html_to_markdown("http://example.com/a_b") == "http://example.com/a_b"  # a body, not a URL


def test_comments_and_crlf_leave_no_trace() -> None:
    # Stack Exchange's syntax hint is an HTML comment (the old walk printed its text); bodies
    # written on Windows carry CRLF (&#xD;&#xA; in the dump's attribute), inside <pre> too.
    html = "<!-- language: lang-py -->\r\n<pre><code>a = 1\r\nb = 2\r\n</code></pre>\r\n<p>text\r\nmore</p>"
    assert html_to_markdown(html) == "```\na = 1\nb = 2\n```\n\ntext more"


def test_deterministic() -> None:
    html = '<ol start="3"><li>x <strike>y</strike></li></ol><pre>a\n\n\nb</pre>'
    assert len({html_to_markdown(html) for _ in range(5)}) == 1


# --------------------------------------------------------------------------- the real dumps

DUMPS = (
    "ai.stackexchange.com/Posts.first233rows.xml",
    "genai.stackexchange.com/Posts.first173rows.xml",
    "meta.datascience.stackexchange.com/Posts.selected200rows.xml",
)
_FENCED = re.compile(r"^ *```.*?^ *```$", re.MULTILINE | re.DOTALL)


def _bodies(path: Path) -> list[tuple[str, str]]:
    return [
        (row.get("Id"), row.get("Body"))
        for row in etree.parse(str(path)).getroot().iter("row")
        if row.get("PostTypeId") in ("1", "2")
    ]


@pytest.mark.parametrize("dump", DUMPS)
def test_real_bodies_keep_list_numbers_and_are_clean(raw_fixtures: Path, dump: str) -> None:
    bodies = _bodies(raw_fixtures / "stackexchange" / dump)
    assert bodies
    for post_id, html in bodies:
        text = html_to_markdown(html, base=SITE)
        assert text == text.strip() and text, post_id
        assert not [line for line in text.split("\n") if line != line.rstrip()], post_id
        prose = _FENCED.sub("CODE", text)
        assert "\n\n\n" not in prose and "\\_" not in prose and "\\*" not in prose, post_id
        # Each <ol>'s items, numbered from its start, open lines of the text in order (the list
        # items are found with lxml, independently of the converter).
        lines = iter(text.split("\n"))
        for ol in lxml.html.fragment_fromstring(html, create_parent="div").iter("ol"):
            start = int(ol.get("start", "1"))
            for n in range(start, start + len([li for li in ol if li.tag == "li"])):
                assert any(re.match(rf"[\s>]*{n}\. ", line) for line in lines), (post_id, n)
        assert text == html_to_markdown(html, base=SITE)  # deterministic


def test_real_dump_continued_list_numbers(raw_fixtures: Path) -> None:
    bodies = dict(_bodies(raw_fixtures / "stackexchange" / DUMPS[1]))
    text = html_to_markdown(bodies["32"])
    numbered = [line.split(".")[0] for line in text.split("\n") if re.match(r"\d+\. ", line)]
    assert numbered == ["1", "2", "3", "4"]  # four <ol>, the last three with start="2", "3", "4"
    assert "2. LLMs are trained on tokens" in text


def test_the_fast_find_parent_answers_as_bs4_does():
    # markdownify asks every element find_parent("pre"); meadow's Tag walks up the parents instead
    # of bs4's general matcher. Same answers, on every element of a nested fragment.
    from bs4 import BeautifulSoup, Tag

    from meadow.sources._html import _Tag

    html = "<div><pre><code>x <b>y</b></code></pre><p>a <i>b <pre>c</pre></i></p><ul><li>d</li></ul></div>"
    fast = BeautifulSoup(html, "lxml", element_classes={Tag: _Tag})
    plain = BeautifulSoup(html, "lxml")
    pairs = list(zip(fast.find_all(True), plain.find_all(True), strict=True))
    assert len(pairs) == 11 and all(isinstance(a, _Tag) for a, _ in pairs)
    for a, b in pairs:
        for name in ("pre", "div", "p", "li", "table"):
            got, want = a.find_parent(name), b.find_parent(name)
            assert (got is None) == (want is None) and (got is None or str(got) == str(want))
        assert str(a.find_parent(["pre", "p"])) == str(b.find_parent(["pre", "p"]))  # bs4's own path
