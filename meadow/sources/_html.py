"""HTML post bodies (Stack Exchange) to Markdown, with markdownify.

Why a converter and not a hand-written walk: a walk that only knows "block" and "inline"
loses what the markup means. Ordered lists must keep their numbers (a how-to's step 11
stays step 11: ``<ol start="11">`` is honoured), struck-out text (``<s>``, ``<strike>``,
``<del>``) is a retraction and must not read as asserted, code must stay a block. Markdown
keeps that structure in plain characters, which is what a chat model is trained to write.

markdownify (MIT; beautifulsoup4 with lxml's HTML parser) is configured for training text,
not for round-tripping to HTML:

- struck-out elements are removed before converting, with their text;
- lists use ``-`` at every depth and ``N.`` numbered from ``start``; headings are ``#``;
- ``<pre>`` is a fenced block, ``<code>`` a backtick span; ``<sup>`` is ``^x`` (10^6, m^2);
- links keep their text and target: ``[text](url)``, a bare URL when the text is the URL;
  relative targets are resolved against the post's site (``base``);
- images are dropped (their alt text is mostly "enter image description here");
- nothing is escaped (no ``\\_`` in snake_case words, no ``\\*``): the output is text to
  learn from, so it keeps the characters the author typed;
- non-breaking spaces become spaces, trailing spaces go (a ``<br>`` is a plain line
  break), runs of blank lines become one (outside code blocks), and the text is stripped.

The conversion is deterministic: the same HTML gives the same text, byte for byte.
"""

from __future__ import annotations

import functools
import re
from typing import Any
from urllib.parse import urljoin

from bs4 import BeautifulSoup, NavigableString, Tag
from markdownify import ATX, MarkdownConverter, chomp

_STRUCK = ("s", "strike", "del")
_BLANK_RUNS = re.compile(r"\n{3,}")
_CODE_BLOCK = re.compile(r"(^ *```.*?^ *```$)", re.MULTILINE | re.DOTALL)
_CLOSING = tuple(".,;:!?)]")
_SUP_TOKEN = re.compile(r"[\w.,+\-\u2212]+")


_STRUCK_TAG = re.compile(r"<(?:s|strike|del)[\s/>]", re.IGNORECASE)
"""Where a body may hold a struck-out element: the tree is searched for them only then."""


class _Tag(Tag):
    """bs4's Tag, with ``find_parent(name)`` as a walk up the parents. markdownify asks it of every
    element ("inside a <pre>?"), and bs4's general matcher made it a third of a Stack Exchange
    dump's load; the answer is the same."""

    def find_parent(self, name: Any = None, attrs: Any = None, **kwargs: Any) -> Any:
        if not isinstance(name, str) or attrs or kwargs:
            return super().find_parent(name, attrs, **kwargs)
        parent = self.parent
        while parent is not None and parent.name != name:
            parent = parent.parent
        return parent


class _Converter(MarkdownConverter):
    def __init__(self, base: str | None = None) -> None:
        super().__init__(
            heading_style=ATX,
            bullets="-",
            escape_asterisks=False,
            escape_underscores=False,
            escape_misc=False,
            strip_document="strip",
            wrap=True,  # source line breaks are spaces, as in HTML; with no width, nothing is re-wrapped
            wrap_width=None,
        )
        self.base = base

    def convert_a(self, el: Any, text: str, parent_tags: set[str]) -> str:
        if "_noformat" in parent_tags:
            return text
        prefix, suffix, text = chomp(text)
        if not text:
            return ""
        href = (el.get("href") or "").strip()
        if not href:
            return prefix + text + suffix
        target = urljoin(self.base, href) if self.base else href
        if text in (href, target):
            return prefix + target + suffix
        return f"{prefix}[{text}]({target}){suffix}"

    def process_text(self, el: Any, parent_tags: set[str] | None = None) -> str:
        text = super().process_text(el, parent_tags=parent_tags)
        if getattr(el.previous_sibling, "name", None) == "br" and "pre" not in (parent_tags or ()):
            text = text.lstrip(" ")  # the source's line break after <br>: not an indent
        return text

    def convert_img(self, el: Any, text: str, parent_tags: set[str]) -> str:
        return ""

    def convert_sup(self, el: Any, text: str, parent_tags: set[str]) -> str:
        text = text.strip()
        if not text:
            return ""
        return "^" + text if _SUP_TOKEN.fullmatch(text) else f"^({text})"


def html_to_markdown(html: str, base: str | None = None) -> str:
    """Markdown text of an HTML fragment; ``base`` resolves relative link targets."""
    # In a container, a body that is only a URL or a file name, or starts with "<?xml", is parsed
    # as the HTML it is (bs4 would warn that it looks like a locator or an XML document).
    soup = BeautifulSoup(f"<div>{html}</div>", "lxml", element_classes={Tag: _Tag})
    if _STRUCK_TAG.search(html):
        for el in soup.find_all(_STRUCK):
            if not el.decomposed:  # not inside a struck element removed already
                _remove_struck(el)
    soup.smooth()  # the text on either side of a removed element becomes one string again
    return _tidy(_converter(base).convert_soup(soup))


@functools.lru_cache(maxsize=64)
def _converter(base: str | None) -> _Converter:
    """One converter per site: it holds only its options and its cache of conversion methods."""
    return _Converter(base)


def _remove_struck(el: Any) -> None:
    before, after = el.previous_sibling, el.next_sibling
    el.decompose()
    texts = isinstance(before, NavigableString) and isinstance(after, NavigableString)
    if texts and after[:1] in _CLOSING and before[-1:].isspace():  # "safe <s>for all</s>." -> "safe."
        before.replace_with(before.rstrip())


def _tidy(text: str) -> str:
    text = "\n".join(line.rstrip() for line in text.replace("\xa0", " ").split("\n"))
    parts = _CODE_BLOCK.split(text)  # odd indices: fenced code blocks, kept as they are
    parts[::2] = [_BLANK_RUNS.sub("\n\n", part) for part in parts[::2]]
    return "".join(parts).strip()
