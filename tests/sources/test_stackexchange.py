"""Tests of the Stack Exchange loaders: the dump's Posts.xml (plain or .7z) and the H4 parquet."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import py7zr
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pydantic import ValidationError

from meadow.errors import InputError
from meadow.records import Record
from meadow.sources import Drop, get
from meadow.sources.stackexchange import host_from_path, parse_tags
from meadow.sources.stackexchange_hf import pm_threshold

DUMPS = {
    "ai": "ai.stackexchange.com/Posts.first233rows.xml",
    "genai": "genai.stackexchange.com/Posts.first173rows.xml",
    "datascience.meta": "meta.datascience.stackexchange.com/Posts.selected200rows.xml",
}

HEAD = '\ufeff<?xml version="1.0" encoding="utf-8"?>\r\n<posts>\r\n'
TAIL = "</posts>"


def load(paths: list[Path], name: str = "stackexchange", **options: object) -> list[Record | Drop]:
    spec = get(name)
    return list(spec.load(paths, spec.options(**options)))


def split(items: list[Record | Drop]) -> tuple[list[Record], list[Drop]]:
    return [i for i in items if isinstance(i, Record)], [i for i in items if isinstance(i, Drop)]


def reasons(items: list[Record | Drop]) -> dict[str, int]:
    return dict(Counter(i.reason for i in items if isinstance(i, Drop)))


def row(**attrs: str) -> str:
    def esc(v: str) -> str:  # as the dump writes attributes: line breaks as character references
        v = v.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
        return v.replace("\r", "&#xD;").replace("\n", "&#xA;").replace("\t", "&#x9;")

    return "  <row " + " ".join(f'{k}="{esc(v)}"' for k, v in attrs.items()) + " />\r\n"


def write_dump(tmp_path: Path, *rows: str, site: str = "health.stackexchange.com") -> Path:
    folder = tmp_path / site
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "Posts.xml"
    path.write_bytes((HEAD + "".join(rows) + TAIL).encode("utf-8"))
    return path


QUESTION = dict(
    Id="1",
    PostTypeId="1",
    Score="3",
    Title="Is fever good?",
    Body="<p>Why do we get fever?</p>",
    Tags="<fever>",
)


def answer(id_: str, score: str = "7", body: str = "<p>It slows microbes.</p>", parent: str = "1") -> str:
    return row(Id=id_, PostTypeId="2", ParentId=parent, Score=score, Body=body)


# --------------------------------------------------------------------------- real dumps


def independent_counts(path: Path, min_score: int = 5) -> dict[str, object]:
    """What the loader must give, computed with ElementTree only."""
    rows = ET.parse(path).getroot().findall("row")
    questions = {r.get("Id") for r in rows if r.get("PostTypeId") == "1"}
    answers = [r for r in rows if r.get("PostTypeId") == "2"]
    kept = [r for r in answers if int(r.get("Score")) >= min_score]
    return {
        "rows": len(rows),
        "questions": len(questions),
        "record_ids": {r.get("Id") for r in kept if r.get("ParentId") in questions},
        "score_below_min": sum(int(r.get("Score")) < min_score for r in answers),
        "question_missing": sum(r.get("ParentId") not in questions for r in kept),
        "other_post_type": sum(r.get("PostTypeId") not in ("1", "2") for r in rows),
    }


@pytest.mark.parametrize("site", sorted(DUMPS))
@pytest.mark.parametrize("min_score", [5, 0])
def test_real_dump_counts(raw_fixtures: Path, site: str, min_score: int) -> None:
    path = raw_fixtures / "stackexchange" / DUMPS[site]
    expected = independent_counts(path, min_score)
    items = load([path], min_score=min_score)
    records, drops = split(items)
    assert {r.id.rsplit(":", 1)[1] for r in records} == expected["record_ids"]
    assert len(records) == len(expected["record_ids"])
    assert all(r.source == f"stackexchange/{site}" for r in records)
    assert len({r.id for r in records}) == len(records)
    for reason in ("score_below_min", "question_missing", "other_post_type"):
        assert reasons(items).get(reason, 0) == expected[reason], reason
    assert not [d for d in drops if d.malformed]
    # Every row is accounted: one item per row, except question rows (the join's context).
    assert len(items) == expected["rows"] - expected["questions"]


def test_real_dump_known_records(raw_fixtures: Path) -> None:
    root = raw_fixtures / "stackexchange"
    ai = {r.id: r for r in split(load([root / DUMPS["ai"]]))[0]}
    rec = ai["stackexchange/ai:3"]
    assert rec.instruction == 'What is "backprop"?'
    assert rec.input == (
        "What does \"backprop\" mean? I've Googled it, but it's showing backpropagation.\n\n"
        'Is the "backprop" term basically the same as "backpropagation" or does it have a different meaning?'
    )
    assert rec.output == (
        '"Backprop" is the same as "backpropagation": it\'s just a shorter way to say it. '
        'It is sometimes abbreviated as "BP".'
    )
    assert rec.meta == {
        "question_id": 1,
        "answer_id": 3,
        "score": 10,
        "accepted": True,
        "tags": ["neural-networks", "definitions"],
        "license": "CC BY-SA",  # 2016 dump: no ContentLicense
        "url": "https://ai.stackexchange.com/a/3",
    }

    genai = {r.id: r for r in split(load([root / DUMPS["genai"]]))[0]}
    rec = genai["stackexchange/genai:2"]
    assert rec.instruction == "What do (parentheses) and [square brackets] do in image prompts?"
    assert rec.output.startswith(  # the body as Markdown: emphasis, lists and links kept
        "Square brackets and parentheses are used for *adjusting the weight* of the contained words:\n\n- "
    )
    assert "<" not in rec.output and "&lt;" not in rec.output
    assert rec.meta["license"] == "CC BY-SA 4.0" and rec.meta["score"] == 12 and rec.meta["accepted"] is True
    assert rec.meta["tags"] == ["image-generation", "prompt-design"]


def test_2024_dump_ordered_by_type_with_pipe_tags(raw_fixtures: Path) -> None:
    path = raw_fixtures / "stackexchange" / DUMPS["datascience.meta"]
    rows = ET.parse(path).getroot().findall("row")
    first_answer = next(i for i, r in enumerate(rows) if r.get("PostTypeId") == "2")
    assert all(r.get("PostTypeId") == "1" for r in rows[:first_answer])  # the quirk under test
    questions = {r.get("Id"): r for r in rows if r.get("PostTypeId") == "1"}
    records = split(load([path]))[0]
    assert records
    for rec in records:
        q = questions[str(rec.meta["question_id"])]
        assert rec.instruction == q.get("Title")
        assert rec.meta["tags"] == [t for t in q.get("Tags").split("|") if t]
        assert rec.meta["accepted"] == (q.get("AcceptedAnswerId") == str(rec.meta["answer_id"]))
        assert rec.meta["url"] == f"https://datascience.meta.stackexchange.com/a/{rec.meta['answer_id']}"


def test_7z_archive_gives_the_same_records(raw_fixtures: Path, tmp_path: Path) -> None:
    plain = raw_fixtures / "stackexchange" / DUMPS["genai"]
    archive = tmp_path / "genai.stackexchange.com.7z"
    (tmp_path / "Users.xml").write_text('<?xml version="1.0" encoding="utf-8"?>\r\n<users>\r\n</users>')
    with py7zr.SevenZipFile(archive, "w") as z:
        z.write(tmp_path / "Users.xml", "Users.xml")
        z.write(plain, "Posts.xml")
    from_7z, from_xml = load([archive]), load([plain])
    assert split(from_7z)[0] == split(from_xml)[0]
    assert reasons(from_7z) == reasons(from_xml)
    assert all(d.where.startswith(f"{archive}!Posts.xml:") for d in split(from_7z)[1])
    assert split(from_7z)[0][0].source == "stackexchange/genai"  # site from the archive name


def test_7z_without_posts_or_damaged(tmp_path: Path) -> None:
    (tmp_path / "Users.xml").write_text("<users></users>")
    archive = tmp_path / "health.stackexchange.com.7z"
    with py7zr.SevenZipFile(archive, "w") as z:
        z.write(tmp_path / "Users.xml", "Users.xml")
    with pytest.raises(InputError, match=r"health\.stackexchange\.com\.7z: the archive holds no Posts\.xml"):
        load([archive])
    broken = tmp_path / "biology.stackexchange.com.7z"
    broken.write_bytes(archive.read_bytes()[:40])
    with pytest.raises(InputError, match=r"biology\.stackexchange\.com\.7z: cannot read the 7z archive"):
        load([broken])


# --------------------------------------------------------------------------- framing and joins


def test_answers_before_their_question_and_orphans(tmp_path: Path) -> None:
    path = write_dump(
        tmp_path,
        answer("5", score="9"),
        answer("6", score="2"),
        answer("7", score="11", parent="99"),
        row(**QUESTION, AcceptedAnswerId="5"),
        answer("8", score="5"),
        row(Id="9", PostTypeId="4", Body="Fever is a raised body temperature."),
    )
    items = load([path])
    records, drops = split(items)
    assert [r.id for r in records] == ["stackexchange/health:5", "stackexchange/health:8"]
    assert records[0].meta["accepted"] is True and records[1].meta["accepted"] is False
    assert records[0].instruction == "Is fever good?" and records[0].input == "Why do we get fever?"
    assert (
        records[0].meta["tags"] == ["fever"]
        and records[0].meta["url"] == "https://health.stackexchange.com/a/5"
    )
    assert reasons(items) == {"score_below_min": 1, "question_missing": 1, "other_post_type": 1}
    missing = next(d for d in drops if d.reason == "question_missing")
    assert missing.where == f"{path}:5 (record 7)" and "question 99" in missing.detail


def test_site_option_and_derivation(tmp_path: Path) -> None:
    anonymous = tmp_path / "dump" / "Posts.xml"
    anonymous.parent.mkdir()
    anonymous.write_text(HEAD + row(**QUESTION) + answer("2") + TAIL, encoding="utf-8")
    with pytest.raises(InputError, match=r"Posts\.xml: cannot tell the Stack Exchange site.*`site`"):
        load([anonymous])
    rec = split(load([anonymous], site="biology"))[0][0]
    assert rec.source == "stackexchange/biology" and rec.id == "stackexchange/biology:2"
    assert rec.meta["url"] == "https://biology.stackexchange.com/a/2"
    with pytest.raises(ValidationError):
        get("stackexchange").options(site="Bio logy")
    with pytest.raises(ValidationError):
        get("stackexchange").options(min_scor=3)

    assert host_from_path(Path("x/biology.stackexchange.com.7z")) == "biology.stackexchange.com"
    assert host_from_path(Path("stackoverflow.com-Posts.7z")) == "stackoverflow.com"
    assert (
        host_from_path(Path("dumps/meta.health.stackexchange.com/Posts.xml"))
        == "health.meta.stackexchange.com"
    )
    assert host_from_path(Path("dumps/Posts.xml")) is None


def test_parse_tags_all_forms() -> None:
    assert parse_tags("<a><b-c>") == ["a", "b-c"]
    assert parse_tags("|a|b-c|") == ["a", "b-c"]
    assert parse_tags("") == [] and parse_tags(None) == []


# --------------------------------------------------------------------------- bodies and titles

QUIRKY_ANSWER = (
    "<p>Steps 11 to 12 of the guide:</p>\n"
    '<ol start="11">\n<li>Grind the beans.</li>\n<li>Brew for <em>4</em> minutes.</li>\n</ol>\n'
    "<p>These coffees <strike>contain acrylamide, a carcinogen, and</strike> are safe "
    "<s>for everyone</s><del>always</del>.</p>\n"
    "<pre><code>caffeine_mg = cups * 95\n\n\nprint(caffeine_mg)\n</code></pre>\n"
    "<ul>\n<li>Dose\n<ul>\n<li>adults: 400&nbsp;mg</li>\n</ul>\n</li>\n</ul>\n"
    "<blockquote><p>Moderation.</p></blockquote>\n"
    '<p>See <a href="/questions/7/tea">the tea question</a>.'
    '<img src="https://i.sstatic.net/x.png" alt="enter image description here" /></p>\n'
)
QUIRKY_TEXT = (
    "Steps 11 to 12 of the guide:\n\n11. Grind the beans.\n12. Brew for *4* minutes.\n\n"
    "These coffees are safe.\n\n"
    "```\ncaffeine_mg = cups * 95\n\n\nprint(caffeine_mg)\n```\n\n"
    "- Dose\n  - adults: 400 mg\n\n"
    "> Moderation.\n\n"
    "See [the tea question](https://health.stackexchange.com/questions/7/tea)."
)


def test_bodies_become_markdown_that_keeps_their_meaning(tmp_path: Path) -> None:
    path = write_dump(tmp_path, row(**QUESTION), answer("2", body=QUIRKY_ANSWER))
    rec = split(load([path]))[0][0]
    assert rec.output == QUIRKY_TEXT
    hf = write_parquet(
        tmp_path / "health.stackexchange.com" / "train.parquet",
        [{**hf_row(1, [hf_answer(2, 5, text=QUIRKY_ANSWER)]), "metadata": []}],
    )
    assert split(load([hf], "stackexchange_hf"))[0][0].output == QUIRKY_TEXT  # the same conversion


def test_titles_are_plain_text(tmp_path: Path) -> None:
    path = write_dump(
        tmp_path,
        row(**{**QUESTION, "Title": "Is &quot;fever&quot; good for kids &amp; adults?"}),
        answer("2"),
        row(**{**QUESTION, "Id": "3", "Title": "  Is  a <1% risk & a\nlow\tone fine?  "}),
        answer("4", parent="3"),
    )
    records = split(load([path]))[0]
    assert [r.instruction for r in records] == [
        'Is "fever" good for kids & adults?',  # references escaped once more than the attribute needs
        "Is a <1% risk & a low one fine?",  # a bare & or < is the title's own text
    ]


# --------------------------------------------------------------------------- bad input


def test_truncated_xml_is_an_error_before_any_item(raw_fixtures: Path, tmp_path: Path) -> None:
    data = (raw_fixtures / "stackexchange" / DUMPS["ai"]).read_bytes()
    path = tmp_path / "ai.stackexchange.com" / "Posts.xml"
    path.parent.mkdir()
    cut = len(data) // 2
    path.write_bytes(data[:cut])
    line = data[:cut].count(b"\n") + 1
    items = get("stackexchange").load([path], get("stackexchange").options())
    with pytest.raises(InputError) as err:
        next(iter(items))  # two passes: the first finds the damage before anything is yielded
    assert err.value.path == str(path) and err.value.line in (line, line + 1)
    assert "truncated XML" in str(err.value)


def test_invalid_utf8_names_the_line(tmp_path: Path) -> None:
    path = write_dump(tmp_path, row(**QUESTION), answer("2"), answer("3", body="<p>BAD</p>"))
    path.write_bytes(path.read_bytes().replace(b"BAD", b"B\xff\xfeD"))
    with pytest.raises(InputError, match="invalid UTF-8") as err:
        load([path])
    assert err.value.line == 5 and err.value.path == str(path)


def test_empty_file_and_wrong_root(tmp_path: Path) -> None:
    empty = tmp_path / "health.stackexchange.com" / "Posts.xml"
    empty.parent.mkdir()
    empty.write_bytes(b"")
    with pytest.raises(InputError, match="empty file"):
        load([empty])
    comments = tmp_path / "health.stackexchange.com" / "Comments.xml"
    comments.write_text('<?xml version="1.0" encoding="utf-8"?>\r\n<comments>\r\n  <row Id="1" /></comments>')
    with pytest.raises(InputError, match=r"Comments\.xml:2: not a Posts\.xml.*<comments>"):
        load([comments])


def test_malformed_rows_are_counted_drops(tmp_path: Path) -> None:
    path = write_dump(
        tmp_path,
        row(**QUESTION),
        row(PostTypeId="2", ParentId="1", Score="9", Body="<p>no id</p>"),
        row(Id="3", ParentId="1", Score="9", Body="<p>no type</p>"),
        row(Id="4", PostTypeId="2", ParentId="1", Score="9"),
        row(Id="5", PostTypeId="2", ParentId="1", Score="nine", Body="<p>x</p>"),
        row(Id="6", PostTypeId="2", Score="9", Body="<p>no parent</p>"),
        row(Id="x7", PostTypeId="2", ParentId="1", Score="9", Body="<p>x</p>"),
        row(Id="8", PostTypeId="1", Score="1", Body="<p>no title</p>"),
        answer("9", score="8", parent="8"),
        answer("10"),
    )
    items = load([path])
    records, drops = split(items)
    assert [r.id for r in records] == ["stackexchange/health:10"]
    by_where = {d.where: d for d in drops}
    expected = {
        f"{path}:4 (record ?)": "row has no Id attribute",
        f"{path}:5 (record 3)": "row has no PostTypeId attribute",
        f"{path}:6 (record 4)": "row has no Body attribute",
        f"{path}:7 (record 5)": "Score 'nine' is not an integer",
        f"{path}:8 (record 6)": "row has no ParentId attribute",
        f"{path}:9 (record x7)": "Id 'x7' is not an integer",
        f"{path}:10 (record 8)": "question row has no Title attribute",
    }
    for at, detail in expected.items():
        assert (
            by_where[at].reason == "malformed_row"
            and by_where[at].malformed
            and by_where[at].detail == detail
        )
    assert by_where[f"{path}:11 (record 9)"].reason == "question_missing"  # its question was malformed
    assert len(drops) == len(expected) + 1


def test_empty_and_huge_bodies(tmp_path: Path) -> None:
    path = write_dump(
        tmp_path,
        row(**QUESTION),
        answer("2", body=""),
        answer("3", body="<p>" + "a" * 10_000_000 + "</p>"),
        answer("4", body="<p>   </p>"),
        row(Id="5", PostTypeId="1", Score="1", Title="   ", Body="<p>untitled</p>"),
        answer("6", parent="5"),
    )
    items = load([path])
    assert not split(items)[0]
    drops = {d.where.rsplit(" ", 1)[1]: d.reason for d in split(items)[1]}
    assert drops == {
        "2)": "empty_output",
        "3)": "too_long_output",
        "4)": "empty_output",
        "6)": "empty_instruction",
    }


# --------------------------------------------------------------------------- example files


def test_example_dump(examples_dir: Path) -> None:
    path = examples_dir / "stackexchange" / "health.stackexchange.com" / "Posts.xml"
    assert path.read_bytes().startswith(b"\xef\xbb\xbf<?xml") and b"\r\n" in path.read_bytes()
    items = load([path])
    records = split(items)[0]
    assert sorted(int(r.id.rsplit(":", 1)[1]) for r in records) == [11, 12, 21, 29, 41, 42, 52]
    assert reasons(items) == {
        "score_below_min": 2,
        "empty_output": 1,
        "other_post_type": 2,
        "question_missing": 1,
        "malformed_row": 1,
    }
    aspirin = next(r for r in records if r.id == "stackexchange/health:41")
    assert aspirin.instruction == "Why shouldn't children take aspirin?" and aspirin.meta["accepted"] is True
    assert aspirin.output.startswith("The concern is **Reye's syndrome**")
    tetanus = next(r for r in records if r.id == "stackexchange/health:21").output
    assert "\n\n1. Wash the wound" in tetanus and "\n\n3. whether you need tetanus immunoglobulin" in tetanus
    assert "three-dose" not in tetanus and tetanus.endswith(
        "\n\nOne booster dose is enough if you had the full course as a child."
    )


def test_example_parquet(examples_dir: Path) -> None:
    paths = sorted((examples_dir / "stackexchange" / "stack-exchange-preferences").rglob("*.parquet"))
    items = load(paths, "stackexchange_hf")
    assert [r.id for r in split(items)[0]] == [f"stackexchange/health:{i}" for i in (901, 903, 911)]
    assert reasons(items) == {"score_below_min": 2, "empty_output": 1, "no_answers": 1}


# --------------------------------------------------------------------------- HF parquet

ANSWER = pa.struct(
    [
        ("answer_id", pa.int64()),
        ("author", pa.string()),
        ("author_id", pa.int64()),
        ("author_profile", pa.string()),
        ("pm_score", pa.int64()),
        ("selected", pa.bool_()),
        ("text", pa.string()),
    ]
)
HF_SCHEMA = pa.schema(
    [
        ("qid", pa.int64()),
        ("question", pa.string()),
        ("answers", pa.list_(ANSWER)),
        ("date", pa.string()),
        ("metadata", pa.list_(pa.string())),
    ]
)
SITE = "https://biology.stackexchange.com"


def hf_answer(
    answer_id: int, pm_score: int, selected: bool = False, text: str = "<p>Because of DNA.</p>"
) -> dict:
    return {
        "answer_id": answer_id,
        "author": "ann",
        "author_id": 7,
        "author_profile": f"{SITE}/users/7",
        "pm_score": pm_score,
        "selected": selected,
        "text": text,
    }


def hf_row(qid: int, answers: list[dict], question: str = "<p>Why are <em>cells</em> small?</p>") -> dict:
    return {
        "qid": qid,
        "question": question,
        "answers": answers,
        "date": "2019/01/02",
        "metadata": [f"{SITE}/questions/{qid}", SITE, f"{SITE}/users/3"],
    }


def write_parquet(path: Path, rows: list[dict], schema: pa.Schema = HF_SCHEMA) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path, row_group_size=2)
    return path


def test_pm_threshold_is_exact_for_five_votes() -> None:
    bucket = pm_threshold(5)
    for votes in range(0, 5000):
        assert (round(math.log2(1 + votes)) >= bucket) == (votes >= 5), votes


def test_hf_records_and_score_rule(tmp_path: Path) -> None:
    path = write_parquet(
        tmp_path / "data" / "biology.stackexchange.com" / "train-00000-of-00001.parquet",
        [
            hf_row(
                10,
                [
                    hf_answer(11, 3),
                    hf_answer(12, 2),
                    hf_answer(13, 3, selected=True),
                    hf_answer(14, 4, selected=True),
                ],
            ),
            hf_row(20, []),
            hf_row(30, [hf_answer(31, 7, text="<p>Surface to <b>volume</b> ratio.</p>")]),
        ],
    )
    items = load([path], "stackexchange_hf")
    records = split(items)[0]
    assert [r.id for r in records] == [
        "stackexchange/biology:11",
        "stackexchange/biology:14",
        "stackexchange/biology:31",
    ]
    rec = records[0]
    assert (rec.instruction, rec.input, rec.output) == ("Why are *cells* small?", "", "Because of DNA.")
    assert rec.meta == {
        "question_id": 10,
        "answer_id": 11,
        "pm_score": 3,
        "accepted": False,
        "date": "2019/01/02",
        "license": "CC BY-SA 4.0",
        "url": f"{SITE}/a/11",
        "question_url": f"{SITE}/questions/10",
    }
    assert records[2].output == "Surface to **volume** ratio."
    assert reasons(items) == {"score_below_min": 2, "no_answers": 1}
    assert next(d for d in split(items)[1] if d.reason == "no_answers").where == f"{path} (record 1)"
    # min_pm_score sets the threshold on pm_score itself
    assert len(split(load([path], "stackexchange_hf", min_pm_score=2))[0]) == 5


def test_hf_site_from_metadata_or_option(tmp_path: Path) -> None:
    path = write_parquet(tmp_path / "shard.parquet", [hf_row(1, [hf_answer(2, 5)])])
    assert split(load([path], "stackexchange_hf"))[0][0].id == "stackexchange/biology:2"
    assert split(load([path], "stackexchange_hf", site="bio"))[0][0].source == "stackexchange/bio"
    no_meta = write_parquet(tmp_path / "other.parquet", [{**hf_row(1, [hf_answer(2, 5)]), "metadata": []}])
    with pytest.raises(InputError, match=r"other\.parquet \(record 0\): cannot tell the Stack Exchange site"):
        load([no_meta], "stackexchange_hf")


def test_hf_bad_files(tmp_path: Path) -> None:
    good = write_parquet(
        tmp_path / "biology.stackexchange.com" / "a.parquet",
        [hf_row(i, [hf_answer(i * 10, 5)]) for i in range(1, 50)],
    )
    truncated = tmp_path / "biology.stackexchange.com" / "b.parquet"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(InputError, match=r"b\.parquet: not a readable parquet file"):
        load([truncated], "stackexchange_hf")
    text = tmp_path / "biology.stackexchange.com" / "c.parquet"
    text.write_text("qid,question\n1,hi\n")
    with pytest.raises(InputError, match=r"c\.parquet: not a readable parquet file"):
        load([text], "stackexchange_hf")
    no_answers = tmp_path / "biology.stackexchange.com" / "d.parquet"
    pq.write_table(pa.table({"qid": [1], "question": ["q"]}), no_answers)
    with pytest.raises(InputError, match=r"d\.parquet: missing column\(s\) \['answers'\]"):
        load([no_answers], "stackexchange_hf")


def test_hf_invalid_utf8_names_the_record(tmp_path: Path) -> None:
    questions = pa.array([b"<p>fine</p>"] * 5 + [b"<p>bad \xff</p>"], type=pa.binary()).view(pa.string())
    table = pa.table(
        {
            "qid": pa.array(range(6), pa.int64()),
            "question": questions,
            "answers": pa.array([[hf_answer(100 + i, 5)] for i in range(6)], pa.list_(ANSWER)),
        }
    )
    path = tmp_path / "biology.stackexchange.com" / "u.parquet"
    path.parent.mkdir()
    pq.write_table(table, path)
    with pytest.raises(InputError, match="invalid UTF-8") as err:
        load([path], "stackexchange_hf")
    assert err.value.record == "5" and err.value.path == str(path)


def test_hf_wrong_types_and_sizes(tmp_path: Path) -> None:
    loose = pa.schema(
        [
            ("qid", pa.string()),
            ("question", pa.string()),
            (
                "answers",
                pa.list_(
                    pa.struct(
                        [
                            ("answer_id", pa.int64()),
                            ("pm_score", pa.string()),
                            ("selected", pa.bool_()),
                            ("text", pa.string()),
                        ]
                    )
                ),
            ),
        ]
    )
    path = write_parquet(
        tmp_path / "biology.stackexchange.com" / "t.parquet",
        [
            {
                "qid": "1",
                "question": "q",
                "answers": [{"answer_id": 1, "pm_score": "5", "selected": False, "text": "t"}],
            },
            {"qid": "2", "question": None, "answers": []},
        ],
        schema=loose,
    )
    items = load([path], "stackexchange_hf")
    assert [(d.reason, d.malformed, d.detail) for d in items] == [
        ("malformed_row", True, "qid is '1', expected an integer"),
        ("malformed_row", True, "qid is '2', expected an integer"),
    ]
    path = write_parquet(
        tmp_path / "biology.stackexchange.com" / "s.parquet",
        [
            hf_row(
                1,
                [
                    hf_answer(2, 5, text=""),
                    hf_answer(3, 5, text="x" * 10_000_000),
                    {**hf_answer(4, 5), "selected": None},
                ],
            ),
            {**hf_row(5, []), "question": None, "answers": None},
            hf_row(6, [hf_answer(7, 5)], question=""),
        ],
    )
    items = load([path], "stackexchange_hf")
    assert [(d.reason, d.where.split("(record ")[1]) for d in items] == [
        ("empty_output", "0, answer 2)"),
        ("too_long_output", "0, answer 3)"),
        ("malformed_row", "0, answer 4)"),
        ("malformed_row", "1)"),
        ("empty_instruction", "2, answer 7)"),
    ]


def test_both_loaders_give_the_same_id_for_the_same_answer(tmp_path: Path) -> None:
    dump = write_dump(tmp_path, row(**QUESTION), answer("2", score="30"), site="biology.stackexchange.com")
    parquet = write_parquet(
        tmp_path / "biology.stackexchange.com" / "train.parquet", [hf_row(1, [hf_answer(2, 6)])]
    )
    assert split(load([dump]))[0][0].id == split(load([parquet], "stackexchange_hf"))[0][0].id


def test_unreadable_path(tmp_path: Path) -> None:
    missing = tmp_path / "health.stackexchange.com" / "Posts.xml"
    with pytest.raises(InputError, match="cannot open"):
        load([missing])
