"""Stack Exchange answers matched to their questions (medAlpaca's "Stack Exchange" datasets).

The dump loader; ``stackexchange_hf`` (meadow/sources/stackexchange_hf.py) reads the same content
as the Hugging Face dataset, with the same framing, ids and text conversion.

``stackexchange``: a site's ``Posts.xml`` from the Stack Exchange data dump
(https://archive.org/details/stackexchange), given either as the plain file or as the
site's archive (``biology.stackexchange.com.7z``), from which only ``Posts.xml`` is
extracted, to a temporary folder. ``Posts.xml`` is ``<posts>`` holding one
``<row .../>`` per post, all fields in attributes: ``Id``, ``PostTypeId`` (1 question,
2 answer, 3-8 tag wikis, moderator nominations and other site pages), ``ParentId``
(answers), ``AcceptedAnswerId`` (questions), ``Score``, ``Title``, ``Body`` (HTML),
``Tags`` and, since 2018, ``ContentLicense``. All dump generations are read: the UTF-8
BOM and CRLF line ends, tags written ``<a><b>`` (up to 2023) or ``|a|b|`` (2024), rows
ordered by Id or grouped by PostTypeId (answers may come before their question).

Task framing (medAlpaca): answers "that had at least five upvotes", each matched to its
question, one record per kept answer:

- dump: instruction = the question title (plain text, see ``plain_title``), input = the
  question body as Markdown, output = the answer body as Markdown;
- HF: the dataset has no title, so instruction = the whole question as Markdown and
  input is empty (cutting a "first sentence" out of a question body too often gives
  "Hi all," as the instruction); output = the answer as Markdown.

Bodies (HTML) become Markdown with ``meadow.sources._html.html_to_markdown``: numbered lists
keep their numbers, struck-out text goes, code stays a block, links keep their text.

Score: the dump's ``Score`` (up minus down votes) is compared with ``min_score`` (5).
The HF dataset has no vote count, only ``pm_score = round(log2(1 + votes)) + accepted``,
so ``min_score`` is mapped onto that scale: an answer is kept when
``pm_score - selected >= round(log2(1 + min_score))``. For the default 5 this is exact
(``round(log2(1 + votes)) >= 3`` exactly when ``votes >= 5``); for other values it keeps
every answer with ``votes >= min_score`` plus those of lower votes in the same rounding
bucket. ``min_pm_score`` sets the pm_score threshold directly instead.

What is counted (the unit): one answer. Dump: every row except well-formed question rows
yields exactly one item. A kept answer gives a ``Record``; an answer below the score gives
``Drop('score_below_min')``; an answer whose question is not in the file gives
``Drop('question_missing')``; rows of other post types give ``Drop('other_post_type')``;
a row with a missing or non-integer ``Id``, ``PostTypeId``, ``ParentId`` or ``Score``, or
with no ``Body`` (or, for a question, no ``Title``) gives ``Drop('malformed_row',
malformed=True)``. Question rows are the join's context, not units: they yield nothing
(so records + drops == rows - well-formed question rows). HF: every answer struct yields
one item the same way; a question row that cannot be read (wrong types) or has no answers
gives one ``Drop`` for the row. Empty or too long texts are dropped by ``make_record``
(``empty_output``, ``too_long_output``, ...).

Ids: ``stackexchange/<site>:<answer Id>`` for both loaders, so the same answer read from
the dump and from the HF dataset is one id (the build keeps it once). ``site`` is the
host without ``.stackexchange.com`` (``biology``; ``stackoverflow`` for stackoverflow.com),
taken from the ``site`` option or from the file, archive or folder name
(``biology.stackexchange.com.7z``, ``biology.stackexchange.com/Posts.xml``); the HF loader
also falls back to the site URL in ``metadata``. Old meta names
(``meta.datascience.stackexchange.com``) are read as the current host
(``datascience.meta.stackexchange.com``, site ``datascience.meta``).

Memory: the dump is read in two streaming passes. The first counts, per question, the
answers that pass the score; the second keeps only those questions (title, text, tags),
each until its last kept answer is written, plus kept answers seen before their question.
"""

from __future__ import annotations

import html
import logging
import re
import tempfile
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lxml import etree
from pydantic import Field

from meadow.errors import InputError
from meadow.records import MAX_TEXT_CHARS, Record
from meadow.sources import Drop, Options, register
from meadow.sources._common import make_record, open_input, where, xml_error
from meadow.sources._html import html_to_markdown

log = logging.getLogger(__name__)

SITE_PATTERN = r"^[a-z0-9][a-z0-9.-]*$"
DEFAULT_LICENSE = "CC BY-SA"

DUMP_CITATION = """@misc{stackexchange_dump,
  author = {{Stack Exchange, Inc.}},
  title = {Stack Exchange Data Dump},
  howpublished = {\\url{https://archive.org/details/stackexchange}},
  note = {Content licensed CC BY-SA 2.5, 3.0 or 4.0 per post}
}"""

_POST_TYPES = {
    3: "orphaned tag wiki",
    4: "tag wiki excerpt",
    5: "tag wiki",
    6: "moderator nomination",
    7: "wiki placeholder",
    8: "privilege wiki",
    9: "collective article",
    10: "collective collection",
}

# Host names of the Stack Exchange network (<site>.stackexchange.com and the sites with their own domain),
# at the start of a file or folder name.
HOST = re.compile(
    r"^((?:[a-z0-9-]+\.)*(?:stackexchange\.com|stackoverflow\.com|superuser\.com|serverfault\.com"
    r"|askubuntu\.com|mathoverflow\.net|stackapps\.com))(?=$|[-._])",
    re.IGNORECASE,
)
_OLD_META = re.compile(r"^meta\.([a-z0-9-]+)\.stackexchange\.com$")
URL_HOST = re.compile(r"^https?://([^/\s]+)", re.IGNORECASE)


class StackExchangeOptions(Options):
    site: str | None = Field(
        default=None,
        pattern=SITE_PATTERN,
        description="site name for the source and ids ('biology' -> stackexchange/biology); "
        "default: from the archive, file or folder name (biology.stackexchange.com)",
    )
    min_score: int = Field(default=5, description="keep answers with Score >= this (medAlpaca: 5)")


# --------------------------------------------------------------------------- sites


def host_to_site(host: str) -> str:
    """'biology.stackexchange.com' -> 'biology'; 'stackoverflow.com' -> 'stackoverflow'."""
    host = host.lower()
    if host.endswith(".stackexchange.com"):
        return host.removesuffix(".stackexchange.com")
    return host.rsplit(".", 1)[0]


def canonical_host(host: str) -> str:
    """Today's host of a site: old meta names 'meta.X.stackexchange.com' become 'X.meta.stackexchange.com'."""
    host = host.lower()
    old = _OLD_META.match(host)
    return f"{old.group(1)}.meta.stackexchange.com" if old else host


def host_from_path(path: Path) -> str | None:
    """The site host named by the file, or the folder or its parent ('biology.stackexchange.com.7z')."""
    for name in (path.name, path.parent.name, path.parent.parent.name):
        m = HOST.match(name)
        if m:
            return canonical_host(m.group(1))
    return None


def resolve_site(option: str | None, path: Path, fallback_host: str | None = None) -> tuple[str, str] | None:
    """(site, host) from the option, else the path, else a host found in the data; None if unknown."""
    path_host = host_from_path(path)
    if option is not None:
        m = HOST.match(option)
        if m and m.end() == len(option):  # the option is a full host name
            host = canonical_host(option)
            return host_to_site(host), host
        return option, path_host or fallback_host or f"{option}.stackexchange.com"
    host = path_host or fallback_host
    if host is None:
        return None
    return host_to_site(host), host


def no_site(path: Path | str) -> InputError:
    return InputError(
        path,
        "cannot tell the Stack Exchange site from the file or folder name "
        "(expected e.g. biology.stackexchange.com.7z or biology.stackexchange.com/Posts.xml); "
        "name it with the loader option `site` (e.g. site: biology)",
    )


# --------------------------------------------------------------------------- text helpers


def parse_tags(raw: str | None) -> list[str]:
    """Tags in either dump form: '<a><b>' (attribute-decoded) or the 2024 '|a|b|'."""
    if not raw:
        return []
    raw = raw.strip()
    if raw.startswith("<"):
        return re.findall(r"<([^<>]+)>", raw)
    if "|" in raw:
        return [t for t in raw.split("|") if t]
    return raw.split()


def to_text(body: str, host: str) -> str:
    """A post body as Markdown (meadow.sources._html); relative links resolved against the site."""
    # A body far longer than a record may hold is dropped as too long without parsing it.
    return body if len(body) > 4 * MAX_TEXT_CHARS else html_to_markdown(body, base=f"https://{host}/")


_ENTITY = re.compile(r"&(?:#\d+|#x[0-9a-fA-F]+|[A-Za-z][A-Za-z0-9]*);")


def plain_title(title: str) -> str:
    """A question title as one line of plain text. Titles are plain text, but some carry HTML
    character references (``&quot;``, ``&amp;``, ``&#39;``) escaped once more than the attribute
    needs: those are decoded, while a bare ``&`` or ``<`` stays. Runs of whitespace (a line
    break, a double space) become one space."""
    title = html.unescape(title) if _ENTITY.search(title) else title
    return " ".join(title.split())


def as_int(value: Any) -> int | None:
    """An int from a parquet cell; bools and other types are not ints here."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


# --------------------------------------------------------------------------- Posts.xml


@dataclass(slots=True)
class _Post:
    line: int
    id: int
    type: int
    parent: int | None = None
    score: int | None = None
    accepted: int | None = None
    title: str = ""
    body: str = ""
    tags: str | None = None
    license: str | None = None


@dataclass(slots=True)
class _Question:
    title: str
    text: str
    tags: list[str]
    accepted: int | None
    remaining: int  # kept answers not yet written


def _int_attr(attrib: Any, name: str, *, required: bool) -> tuple[int | None, str | None]:
    value = attrib.get(name)
    if value is None:
        return None, f"row has no {name} attribute" if required else None
    try:
        return int(value), None
    except ValueError:
        return None, f"{name} {value[:40]!r} is not an integer"


def _parse_row(attrib: Any, line: int) -> _Post | tuple[str, str]:
    """A row's fields, or (record label, problem) for a malformed row."""
    raw_id = attrib.get("Id", "?")
    label = raw_id[:40]
    post_id, problem = _int_attr(attrib, "Id", required=True)
    if problem:
        return label, problem
    post_type, problem = _int_attr(attrib, "PostTypeId", required=True)
    if problem:
        return label, problem
    assert post_id is not None and post_type is not None
    post = _Post(line=line, id=post_id, type=post_type)
    if post_type not in (1, 2):
        return post
    body = attrib.get("Body")
    if body is None:
        return label, "row has no Body attribute"
    post.body = body
    post.license = attrib.get("ContentLicense")
    if post_type == 1:
        title = attrib.get("Title")
        if title is None:
            return label, "question row has no Title attribute"
        post.title = title
        post.tags = attrib.get("Tags")
        post.accepted, problem = _int_attr(attrib, "AcceptedAnswerId", required=False)
    else:
        post.parent, problem = _int_attr(attrib, "ParentId", required=True)
        if not problem:
            post.score, problem = _int_attr(attrib, "Score", required=True)
    if problem:
        return label, problem
    return post


def _iter_rows(xml: Path, label: str) -> Iterator[_Post | tuple[str, str, int]]:
    """Stream the rows of a Posts.xml: a _Post, or (record, problem, line) for a malformed row.

    Truncated or invalid XML and invalid UTF-8 raise InputError with the line.
    """
    with open_input(xml, label=label, expected="a Posts.xml (<posts> with <row> elements)") as f:
        parser = etree.iterparse(f, events=("start", "end"), huge_tree=True, remove_comments=True)
        root = None
        try:
            for event, elem in parser:
                if root is None:
                    root = elem
                    if elem.tag != "posts":
                        raise InputError(
                            label,
                            f"not a Posts.xml: the root element is <{elem.tag}>, expected <posts>",
                            line=elem.sourceline,
                        )
                    continue
                if event != "end" or elem.getparent() is not root:
                    continue
                line = elem.sourceline or 0
                if elem.tag == "row":
                    post = _parse_row(elem.attrib, line)
                    yield post if isinstance(post, _Post) else (post[0], post[1], line)
                else:
                    yield "?", f"unexpected element <{elem.tag}> in <posts>", line
                elem.clear()
                while elem.getprevious() is not None:
                    del root[0]
        except etree.XMLSyntaxError as err:
            raise xml_error(label, err) from None


def _kept_answers_per_question(xml: Path, label: str, min_score: int) -> Counter[int]:
    """First pass: for each question id, how many of its answers pass the score."""
    needed: Counter[int] = Counter()
    for post in _iter_rows(xml, label):
        if isinstance(post, _Post) and post.type == 2 and post.score is not None and post.score >= min_score:
            assert post.parent is not None
            needed[post.parent] += 1
    return needed


def _join(xml: Path, label: str, site: str, host: str, min_score: int) -> Iterator[Record | Drop]:
    needed = _kept_answers_per_question(xml, label, min_score)
    source = f"stackexchange/{site}"
    questions: dict[int, _Question] = {}
    pending: dict[int, list[_Post]] = defaultdict(list)  # kept answers seen before their question

    def emit(question: _Question, answer: _Post, question_id: int) -> Record | Drop:
        return make_record(
            where(label, answer.line, str(answer.id)),
            instruction=plain_title(question.title),
            input=question.text,
            output=to_text(answer.body, host),
            source=source,
            id=f"{source}:{answer.id}",
            meta={
                "question_id": question_id,
                "answer_id": answer.id,
                "score": answer.score,
                "accepted": question.accepted == answer.id,
                "tags": question.tags,
                "license": answer.license or DEFAULT_LICENSE,
                "url": f"https://{host}/a/{answer.id}",
            },
        )

    for post in _iter_rows(xml, label):
        if not isinstance(post, _Post):
            record, problem, line = post
            yield Drop("malformed_row", where(label, line, record), problem, malformed=True)
            continue
        if post.type == 1:
            if post.id not in needed or post.id in questions:
                continue  # context only: no answer of it passes the score (or a repeated Id)
            question = _Question(
                post.title, to_text(post.body, host), parse_tags(post.tags), post.accepted, needed[post.id]
            )
            for answer in pending.pop(post.id, []):
                question.remaining -= 1
                yield emit(question, answer, post.id)
            if question.remaining > 0:
                questions[post.id] = question
            continue
        at = where(label, post.line, str(post.id))
        if post.type != 2:
            kind = _POST_TYPES.get(post.type, "unknown post type")
            yield Drop("other_post_type", at, f"PostTypeId {post.type} ({kind})")
            continue
        assert post.score is not None and post.parent is not None
        if post.score < min_score:
            yield Drop("score_below_min", at, f"Score {post.score} < {min_score}")
            continue
        question = questions.get(post.parent)
        if question is None:
            pending[post.parent].append(post)
            continue
        question.remaining -= 1
        if question.remaining == 0:
            del questions[post.parent]
        yield emit(question, post, post.parent)

    for parent, answers in pending.items():
        for answer in answers:
            yield Drop(
                "question_missing",
                where(label, answer.line, str(answer.id)),
                f"question {parent} is not in the file",
            )


def _extract_posts(archive: Path, into: Path) -> Path:
    """Extract only Posts.xml from a site's .7z archive into the folder ``into``."""
    import py7zr  # imported here: only archives need it

    try:
        with py7zr.SevenZipFile(archive, mode="r") as z:
            names = z.getnames()
            members = [n for n in names if n.replace("\\", "/").rsplit("/", 1)[-1].lower() == "posts.xml"]
            if not members:
                shown = ", ".join(sorted(names)[:12])
                raise InputError(archive, f"the archive holds no Posts.xml (it holds: {shown})")
            log.info("extracting %s from %s", members[0], archive)
            z.extract(path=into, targets=[members[0]])
    except InputError:
        raise
    except Exception as err:  # py7zr, lzma, CRC and I/O errors of a damaged or truncated archive
        raise InputError(archive, f"cannot read the 7z archive: {type(err).__name__}: {err}") from None
    posts = into / members[0]
    if not posts.is_file():
        raise InputError(archive, f"extracting {members[0]} gave no file")
    return posts


@register(
    "stackexchange",
    options=StackExchangeOptions,
    per_file=True,
    tags=True,
    produces="records",
    summary="Stack Exchange dump (Posts.xml or the site's .7z): answers with Score >= 5 and their question",
    license="CC BY-SA (2.5, 3.0 or 4.0 per post, see meta.license); attribution by the post URL",
    citation=DUMP_CITATION,
)
def load(paths: Sequence[Path], options: StackExchangeOptions) -> Iterator[Record | Drop]:
    for path in paths:
        path = Path(path)
        resolved = resolve_site(options.site, path)
        if resolved is None:
            raise no_site(path)
        site, host = resolved
        if path.suffix.lower() == ".7z":
            with tempfile.TemporaryDirectory(prefix="meadow-stackexchange-") as tmp:
                xml = _extract_posts(path, Path(tmp))
                yield from _join(xml, f"{path}!{xml.name}", site, host, options.min_score)
        else:
            yield from _join(path, str(path), site, host, options.min_score)
