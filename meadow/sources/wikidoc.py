"""WikiDoc (wikidoc.org): medAlpaca's "Wikidoc Living Textbook" and "Wikidoc Patient Information".

Option ``kind`` (required) says which of the two a file holds: ``textbook`` or
``patient_information``; it sets the source (``wikidoc/textbook``, ``wikidoc/patient_information``)
and, for page text, the task framing. The format is detected from the file's first bytes:

- medAlpaca's published files (``medalpaca/medical_meadow_wikidoc``,
  ``medical_meadow_wikidoc_patient_information`` on the Hugging Face Hub; ``medical_meadow_small.json``
  in the medAlpaca repository): a JSON array (or JSON Lines) of ``{instruction, input, output}``,
  or the same columns as Parquet. They are already question/answer pairs and become Records as
  they are. id = content hash of instruction, input and output.
- A MediaWiki XML export of WikiDoc pages (``Special:Export``: ``<mediawiki><page><title/><ns/>
  <id/><revision><id/><text>wikitext</text></revision></page>``, any export-0.x namespace),
  streamed with lxml. The last revision of each page in the main namespace is split into
  sections at its headings (``== Heading ==``, ``=== Sub ===``, ...; the text before the first
  heading is the lead section) and the wikitext is reduced to plain text: links show their
  label, templates, ``<ref>``s, tables, comments, files/images and categories are removed,
  bold/italic quotes dropped, list items become ``- item``.

  ``patient_information``: on these pages each section heading is already a question
  ("What are the symptoms of Asthma?"), so a section whose heading ends with ``?`` becomes
  ``Record(instruction="Answer this question truthfully", input=<heading>, output=<section
  text>)``, as in medAlpaca. The output includes the section's subsections (their headings as
  lines). Other sections: ``heading_not_question``; the lead section: ``no_heading``.

  ``textbook``: every section (lead included; subsections are sections of their own) becomes a
  ``Passage`` (task ``wikidoc_textbook``) whose text is exactly::

      <page title> - <heading> - <subheading>

      <section text>

  i.e. the page title and the path of headings down to the section, joined by `` - ``, a blank
  line, then the section's own text; the LLM turns the heading into a question and the text
  into its answer (medAlpaca used GPT-3.5-turbo). Sections with fewer than ``min_chars``
  characters of text: ``too_short``.

  Both kinds: References / External links / See also / Further reading / Sources / Notes /
  Bibliography / Footnotes / Gallery / Related chapters sections: ``non_content_section``;
  pages outside the main namespace: ``not_article``; redirects: ``redirect``; pages without
  text: ``empty_page``; pages without a title or id: ``invalid_page`` (malformed).
  id = ``<source>:<page id>#<section anchor>`` (the anchor as MediaWiki makes it: spaces ->
  ``_``, a repeated heading gets ``_2``, ``_3``); the lead section's id has no ``#<anchor>``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

import mwparserfromhell
from lxml import etree
from mwparserfromhell.nodes import (
    Argument,
    Comment,
    ExternalLink,
    Heading,
    HTMLEntity,
    Tag,
    Template,
    Text,
    Wikilink,
)
from mwparserfromhell.wikicode import Wikicode
from pydantic import Field

from meadow.errors import InputError
from meadow.records import Passage, Record
from meadow.sources import Drop, Options, register
from meadow.sources._common import (
    BOM,
    MEDALPACA_CITATION,
    content_id,
    iter_json_records,
    make_passage,
    make_record,
    open_input,
    where,
    xml_error,
)

INSTRUCTION = "Answer this question truthfully"

CITATION = MEDALPACA_CITATION

LICENSE = "WikiDoc page text: CC BY-SA 3.0 (wikidoc.org); medAlpaca's Hugging Face copies are marked 'cc'"

_FIELDS = ("instruction", "input", "output")
_NON_CONTENT = {
    "references",
    "external links",
    "see also",
    "further reading",
    "sources",
    "notes",
    "bibliography",
    "footnotes",
    "gallery",
    "related chapters",
}
_WIKI_URL = "https://www.wikidoc.org/index.php/"


class WikidocOptions(Options):
    kind: Literal["textbook", "patient_information"]
    """Which WikiDoc subsite the files hold; sets the source name and the task framing."""
    min_chars: int = Field(100, ge=0)
    """Textbook sections (MediaWiki XML) with less text than this are dropped as too_short."""

    def yields_passages(self, patterns: Sequence[str]) -> bool:
        # Textbook pages from a MediaWiki export need the LLM; medAlpaca's published
        # JSON/Parquet files are already Q/A pairs.
        published = (".json", ".jsonl", ".parquet")
        return self.kind == "textbook" and not all(p.lower().endswith(published) for p in patterns)


@register(
    "wikidoc",
    options=WikidocOptions,
    per_file=True,
    produces="records or passages",
    summary="WikiDoc textbook and patient information (medAlpaca JSON/Parquet or MediaWiki XML export)",
    license=LICENSE,
    citation=CITATION,
)
def load(paths: Sequence[Path], options: WikidocOptions) -> Iterator[Record | Passage | Drop]:
    source = f"wikidoc/{options.kind}"
    for path in paths:
        path = Path(path)
        fmt = _detect(path)
        if fmt == "parquet":
            yield from _load_parquet(path, source)
        elif fmt == "json":
            for at, obj in iter_json_records(path):
                yield _qa_item(at, obj, source, path)
        else:
            yield from _load_xml(path, source, options)


def _detect(path: Path) -> Literal["parquet", "json", "xml"]:
    expected = "medAlpaca's JSON / JSON Lines / Parquet, or a MediaWiki XML export"
    with open_input(path, expected=expected) as f:
        head = f.read(512)
    if head.startswith(b"PAR1"):
        return "parquet"
    start = head.removeprefix(BOM).lstrip()[:1]
    if start == b"<":
        return "xml"
    if start in (b"[", b"{"):
        return "json"
    raise InputError(
        path,
        "unrecognised format: expected medAlpaca's JSON array / JSON Lines of "
        "{instruction, input, output}, the same as Parquet, or a MediaWiki XML export",
    )


# ---------------------------------------------------------------- medAlpaca JSON / Parquet


def _qa_item(at: str, obj: Any, source: str, path: Path) -> Record | Drop:
    if not isinstance(obj, dict):
        return Drop(
            "not_an_object",
            at,
            f"expected an object with {', '.join(_FIELDS)}, found {type(obj).__name__}",
            malformed=True,
        )
    missing = [key for key in _FIELDS if key not in obj]
    if missing:
        return Drop("missing_field", at, f"missing key(s): {', '.join(missing)}", malformed=True)
    values = [obj[key] for key in _FIELDS]
    rid = content_id(source, *(v if isinstance(v, str) else repr(v) for v in values))
    return make_record(
        at,
        instruction=values[0],
        input=values[1],
        output=values[2],
        source=source,
        id=rid,
        meta={"file": path.name},
    )


def _load_parquet(path: Path, source: str) -> Iterator[Record | Drop]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as err:
        raise InputError(path, f"not a readable Parquet file: {err}") from None
    names = pf.schema_arrow.names
    missing = [key for key in _FIELDS if key not in names]
    if missing:
        raise InputError(path, f"missing column(s) {missing}; the file has {names}")
    row = 0
    batches = pf.iter_batches(batch_size=1024, columns=list(_FIELDS))
    while True:
        try:
            batch = next(batches, None)
        except (pa.ArrowException, OSError) as err:
            raise InputError(path, f"corrupt Parquet data after row {row}: {err}") from None
        if batch is None:
            return
        for obj in batch.to_pylist():
            yield _qa_item(where(path, record=str(row)), obj, source, path)
            row += 1


# ---------------------------------------------------------------- MediaWiki XML export


@dataclass(frozen=True)
class Page:
    title: str | None
    page_id: str | None
    ns: str
    redirect: bool
    revision_id: str | None
    text: str | None
    line: int | None


def _local(tag: Any) -> str:
    return etree.QName(tag).localname if isinstance(tag, str) else ""


def _child_text(elem: Any, name: str) -> str | None:
    for child in elem:
        if _local(child.tag) == name:
            return child.text
    return None


def _page(elem: Any) -> Page:
    revisions = [child for child in elem if _local(child.tag) == "revision"]
    last = revisions[-1] if revisions else None
    return Page(
        title=(_child_text(elem, "title") or "").strip() or None,
        page_id=(_child_text(elem, "id") or "").strip() or None,
        ns=(_child_text(elem, "ns") or "0").strip(),
        redirect=any(_local(child.tag) == "redirect" for child in elem),
        revision_id=(_child_text(last, "id") or "").strip() or None if last is not None else None,
        text=_child_text(last, "text") if last is not None else None,
        line=elem.sourceline,
    )


def _load_xml(path: Path, source: str, options: WikidocOptions) -> Iterator[Record | Passage | Drop]:
    context = etree.iterparse(
        str(path), events=("start", "end"), huge_tree=True, resolve_entities=False, no_network=True
    )
    root_checked = False
    try:
        for event, elem in context:
            if not root_checked:
                root_checked = True
                if _local(elem.tag) != "mediawiki":
                    raise InputError(
                        path,
                        f"expected a MediaWiki export (<mediawiki> root element), found <{_local(elem.tag)}>",
                        line=elem.sourceline,
                    )
            if event != "end" or _local(elem.tag) != "page":
                continue
            page = _page(elem)
            elem.clear()
            while elem.getprevious() is not None:
                del elem.getparent()[0]
            yield from _page_items(path, page, source, options)
    except etree.XMLSyntaxError as err:
        raise xml_error(path, err) from None


_REDIRECT = re.compile(r"\s*#redirect\b", re.IGNORECASE)


def _page_items(
    path: Path, page: Page, source: str, options: WikidocOptions
) -> Iterator[Record | Passage | Drop]:
    at = where(path, page.line, f"page {page.page_id} {page.title!r}")
    if page.title is None or page.page_id is None:
        yield Drop("invalid_page", at, "a <page> needs a <title> and an <id>", malformed=True)
        return
    if page.ns != "0":
        yield Drop("not_article", at, f"namespace {page.ns}, not the main namespace")
        return
    if page.redirect or (page.text and _REDIRECT.match(page.text)):
        yield Drop("redirect", at)
        return
    if not page.text or not page.text.strip():
        yield Drop("empty_page", at)
        return
    sections = split_sections(page.text)
    anchors: dict[str, int] = {}
    path_stack: list[tuple[int, str]] = []  # (level, heading) of the enclosing headings
    i = 0
    while i < len(sections):
        level, raw_heading, body = sections[i]
        i += 1
        heading = wiki_to_text(raw_heading).replace("\n", " ") if raw_heading is not None else None
        anchor = _anchor(heading, anchors) if heading is not None else None
        while path_stack and path_stack[-1][0] >= level:
            path_stack.pop()
        if heading is not None:
            path_stack.append((level, heading))
        here = where(
            path, page.line, f"page {page.page_id} {page.title!r}" + (f" #{anchor}" if anchor else "")
        )
        rid = f"{source}:{page.page_id}" + (f"#{anchor}" if anchor else "")
        meta = {
            "title": page.title,
            "page_id": page.page_id,
            "revision_id": page.revision_id,
            "section": heading,
            "url": _url(page.title, anchor),
            "file": path.name,
        }
        if heading is not None and heading.strip().rstrip(":.").lower() in _NON_CONTENT:
            yield Drop("non_content_section", here, heading)
            continue
        if options.kind == "patient_information":
            if heading is None:
                yield Drop("no_heading", here, "text before the first heading")
                continue
            if not heading.endswith("?"):
                yield Drop("heading_not_question", here, heading)
                continue
            # The answer includes the subsections: everything down to the next heading at this level or above.
            parts = [body]
            while i < len(sections) and sections[i][0] > level:
                sub_level, sub_heading, sub_body = sections[i]
                parts.append(f"\n{'=' * sub_level} {sub_heading} {'=' * sub_level}{sub_body}")
                i += 1
            yield make_record(
                here,
                instruction=INSTRUCTION,
                input=heading,
                output=wiki_to_text("".join(parts)),
                source=source,
                id=rid,
                meta=meta,
            )
        else:
            text = wiki_to_text(body)
            if len(text) < options.min_chars:
                yield Drop(
                    "too_short", here, f"{len(text)} characters of text, fewer than {options.min_chars}"
                )
                continue
            title_path = " - ".join([page.title, *(h for _, h in path_stack if h)])
            yield make_passage(
                here,
                text=f"{title_path}\n\n{text}",
                source=source,
                id=rid,
                task="wikidoc_textbook",
                meta={**meta, "heading_path": [h for _, h in path_stack]},
            )


def _anchor(heading: str, seen: dict[str, int]) -> str:
    anchor = re.sub(r"\s+", "_", heading.strip()) or "_"
    seen[anchor] = seen.get(anchor, 0) + 1
    return anchor if seen[anchor] == 1 else f"{anchor}_{seen[anchor]}"


def _url(title: str, anchor: str | None) -> str:
    url = _WIKI_URL + quote(title.replace(" ", "_"), safe="/:(),'")
    return url + (f"#{quote(anchor, safe='/:(),?')}" if anchor else "")


# ---------------------------------------------------------------- wikitext -> sections, plain text

_COMMENT = re.compile(r"<!--.*?(?:-->|\Z)", re.DOTALL)
_HEADING = re.compile(r"^(={1,6})[ \t]*(.+?)[ \t]*\1[ \t]*$", re.MULTILINE)


def split_sections(wikitext: str) -> list[tuple[int, str | None, str]]:
    """[(level, heading wikitext, body wikitext)], the lead first (level 0, heading None) if not blank."""
    text = _COMMENT.sub("", wikitext)
    matches = list(_HEADING.finditer(text))
    lead = text[: matches[0].start()] if matches else text
    sections: list[tuple[int, str | None, str]] = [(0, None, lead)] if lead.strip() else []
    for m, following in zip(matches, [*matches[1:], None], strict=True):
        end = following.start() if following is not None else len(text)
        sections.append((len(m.group(1)), m.group(2), text[m.end() : end]))
    return sections


_TABLE = re.compile(r"^[ \t]*\{\|(?:(?!^[ \t]*\{\|).)*?^[ \t]*\|\}[^\n]*\n?", re.MULTILINE | re.DOTALL)
_BULLET = re.compile(r"^[*#]+[ \t]*", re.MULTILINE)
_INDENT = re.compile(r"^[:;]+[ \t]*", re.MULTILINE)
_MAGIC = re.compile(r"__[A-Z]+__")
_QUOTES = re.compile(r"'{2,}")
_SPACES = re.compile(r"[ \t\xa0\u2009\u200b]+")
_BLANKS = re.compile(r"\n{3,}")
_HIDDEN_LINKS = {"file", "image", "media", "category"}
_LANGUAGE = re.compile(r"[a-z]{2,3}(?:-[a-z]+)?")
_HIDDEN_TAGS = {
    "ref",
    "references",
    "table",
    "gallery",
    "imagemap",
    "timeline",
    "math",
    "chem",
    "score",
    "graph",
    "templatedata",
    "syntaxhighlight",
    "source",
    "inputbox",
    "categorytree",
    "includeonly",
    "script",
    "style",
}
_BLOCK_TAGS = {
    "p",
    "div",
    "blockquote",
    "center",
    "pre",
    "ul",
    "ol",
    "li",
    "dl",
    "dt",
    "dd",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "tr",
}


def wiki_to_text(wikitext: str) -> str:
    """Plain text from wikitext (see the module docstring for what is kept)."""
    text = _COMMENT.sub("", wikitext)
    previous = None
    while previous != text:  # innermost tables first
        previous, text = text, _TABLE.sub("", text)
    text = _BULLET.sub("- ", text)
    text = _INDENT.sub("", text)
    text = _strip(mwparserfromhell.parse(text))
    text = _QUOTES.sub("", _MAGIC.sub("", text))
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    lines = [line for line in lines if line != "-"]  # a bullet whose item was all markup
    return _BLANKS.sub("\n\n", "\n".join(lines)).strip()


def _strip(code: Wikicode) -> str:
    out: list[str] = []
    for node in code.nodes:
        if isinstance(node, Text):
            out.append(node.value)
        elif isinstance(node, Template | Comment | Argument):
            continue
        elif isinstance(node, Wikilink):
            title = _strip(node.title).strip()
            prefix = title.split(":", 1)[0].strip().lower() if ":" in title else ""
            if prefix in _HIDDEN_LINKS or (prefix and _LANGUAGE.fullmatch(prefix)):
                continue
            out.append(_strip(node.text) if node.text is not None else title.lstrip(":"))
        elif isinstance(node, ExternalLink):
            if node.title is not None:
                out.append(_strip(node.title))
            elif not node.brackets:
                out.append(str(node.url))
        elif isinstance(node, HTMLEntity):
            out.append(node.normalize())
        elif isinstance(node, Heading):
            out.append(_strip(node.title).strip())
        elif isinstance(node, Tag):
            tag = str(node.tag).strip().lower()
            if tag in _HIDDEN_TAGS:
                continue
            if tag in ("br", "hr"):
                out.append("\n")
                continue
            inner = _strip(node.contents) if node.contents is not None else ""
            out.append(f"\n{inner}\n" if tag in _BLOCK_TAGS else inner)
        else:
            out.append(str(node))
    return "".join(out)
