"""A synthetic `recipes/v1.yaml` input tree at medAlpaca's real sizes, from the real fixture text.

Every source and benchmark of v1 is written in its raw published format, laid out as `meadow fetch`
lays out data/raw/ (so the recipe's paths map one to one): StackExchange `.7z` site dumps holding
Posts.xml, Anki `.apkg` packages, a WikiDoc MediaWiki export, CORD-19 `metadata.csv`, ChatDoctor,
MEDIQA-AnS, MedQA, PubMed, oasst1 trees (.jsonl.gz), and the four benchmarks' test files.

The text is real: sentences, paragraphs, titles and questions of the fixture slices
(../shared/fixtures/raw/<source>/, see its PROVENANCE.md; examples/ where a source has none:
MedQA, USMLE, the WikiDoc textbook's markup, the Anki example deck), re-keyed and recombined (a
record draws several sentences or paragraphs at random; one-sentence records splice two halves),
so records are unique and mostly share no long word n-grams, as real ones do. The flashcards have
no fixture: their fronts are the fixture questions (MMLU, WikiDoc, MEDIQA) and their backs
fixture sentences. Benchmark questions carry a unique token every 6 words, so no training
record holds one of their 8-grams by chance; a known number of MedQA test questions is planted
in the MedQA train file (`PLANTED` in the summary) to check that decontamination finds them.

Sizes (scale 1): `sizes(1.0)`. Where the real upstream file differs from medAlpaca's table,
the file's size is used (PubMed causal 3,061 rows, health advice 5,982 + 934 + 3,932 rows,
GenMedGPT 5,452); ChatDoctor adds up to medAlpaca's 215,000 (the real HealthCareMagic-100k
and iCliniq files hold 112,165 and 7,321).

    python bench/v1_inputs.py --out /tmp/v1-inputs [--scale 0.1]

About 850 lines, over LAYOUT.md's ~500: one writer per published format (13 sources, 4 benchmarks)
beside the text pools they share; a bench script, read top to bottom, not library code.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import json
import random
import re
import shutil
import sqlite3
import sys
import tempfile
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # this checkout's meadow, not another install's

from meadow.text import words  # noqa: E402

FIXTURES = REPO.parent / "shared" / "fixtures" / "raw"
EXAMPLES = REPO / "examples"
VERSION = 5
"""Bump when what is generated changes: cached trees of another version are rebuilt."""

SITES = {"academia": 40_865, "biology": 27_887, "fitness": 9_833, "health": 7_721, "bioinformatics": 5_407}
MMLU_SUBJECTS = {  # medical test questions per subject (1,089)
    "anatomy": 135,
    "clinical_knowledge": 265,
    "college_biology": 144,
    "college_medicine": 173,
    "medical_genetics": 100,
    "professional_medicine": 272,
}
ADVICE_FILES = {  # rows, and the columns after label,pmid,sentence
    "structured_abstract": (5_982, ["design"]),
    "unstructured_abstract": (934, ["rel_loc"]),
    "discussion": (3_932, ["rel_loc", "citation_mentioned", "past_tense"]),
}
CHATDOCTOR = {"HealthCareMagic-100k.json": 199_548, "iCliniq.json": 10_000, "chatdoctor5k.json": 5_452}
USMLE = {1: (119, 27), 2: (120, 10), 3: (137, 13)}  # step: (questions, of them with an image)


def sizes(scale: float) -> dict[str, Any]:
    """What each source and benchmark gets at ``scale`` (1.0: medAlpaca's sizes)."""

    def s(n: int) -> int:
        return max(1, round(n * scale))

    return {
        "flashcards": s(33_955),
        "wikidoc": s(67_704),
        "wikidoc_patient_information": s(5_942),
        **{f"stackexchange_{site}": s(n) for site, n in SITES.items()},
        "mediqa": s(552),  # answers; x 4 summary types = 2,208 records
        "cord19": s(1_056_660),
        "medqa": s(10_178),
        "pubmed_health_advice": {k: s(n) for k, (n, _) in ADVICE_FILES.items()},
        "pubmed_causal": s(3_061),
        "chatdoctor": {k: s(n) for k, n in CHATDOCTOR.items()},
        "openassistant": s(9_209),
        "mmlu_test": {k: s(n) for k, n in MMLU_SUBJECTS.items()},
        "medqa_test": s(1_273),
        "usmle": {k: (s(n), max(0, round(i * scale))) for k, (n, i) in USMLE.items()},
        "pubmedqa": s(500),
    }


# --------------------------------------------------------------------------- text


_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\"'])")


def split_sentences(texts: list[str], min_words: int = 4) -> list[str]:
    out = []
    for text in texts:
        for s in _SENTENCE.split(" ".join(text.split())):
            if len(s.split()) >= min_words:
                out.append(s)
    return out


class Pool:
    """Real text units (sentences, paragraphs, questions) drawn at random into new texts."""

    def __init__(self, items: list[str], rng: random.Random):
        if not items:
            raise ValueError("empty text pool")
        self.items, self.rng = items, rng

    def one(self) -> str:
        return self.rng.choice(self.items)

    def some(self, lo: int, hi: int, sep: str = " ") -> str:
        return sep.join(self.rng.choices(self.items, k=self.rng.randint(lo, hi)))

    def splice(self) -> str:
        """The first part of one item and the rest of another: a new one-sentence text."""
        a, b = self.one().split(), self.one().split()
        return " ".join(a[: max(1, len(a) // 2)] + b[len(b) // 2 :])


class Marker:
    """Unique tokens put in benchmark text before every ``every`` normalised words (meadow.text, as
    decontamination reads them): no 8-word n-gram of a benchmark question occurs anywhere by chance."""

    def __init__(self, prefix: str, every: int = 6):
        self.prefix, self.every, self.n = prefix, every, 0

    def __call__(self, text: str) -> str:
        out: list[str] = []
        since = self.every
        for chunk in text.split():
            parts = [chunk] if len(words(chunk)) <= self.every else re.sub(r"[\W_]+", " ", chunk).split()
            for w in parts:
                k = len(words(w))
                if since + k > self.every:
                    self.n += 1
                    out.append(f"{self.prefix}{self.n:x}")
                    since = 0
                out.append(w)
                since += k
        return " ".join(out)


def fixture(source: str, pattern: str, example: str | None = None) -> list[Path]:
    """A source's fixture files (../shared/fixtures/raw/<source>/<pattern>), else examples/<example>."""
    found = sorted((FIXTURES / source).glob(pattern)) or (sorted(EXAMPLES.glob(example)) if example else [])
    if not found:
        sys.exit(f"no text for {source}: neither {FIXTURES / source / pattern} nor examples/{example}")
    return found


class Texts:
    """The fixture text, read once, per kind."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        pool = lambda items: Pool(items, rng)  # noqa: E731
        cord = fixture("cord19", "metadata.first150.csv", "cord19/metadata.csv")
        with open(cord[0], newline="", encoding="utf-8") as f:
            self.cord_rows = [r for r in csv.DictReader(f) if r["abstract"].strip()]
        self.cord_header = list(self.cord_rows[0])
        self.abstract = pool(split_sentences([r["abstract"] for r in self.cord_rows]))
        self.title = pool([r["title"] for r in self.cord_rows if r["title"].strip()])

        wiki = json.loads(fixture("wikidoc", "*.json")[0].read_text())  # no example in this layout
        self.wiki_question = pool([r["input"] for r in wiki])
        self.wiki_sentence = pool(split_sentences([r["output"] for r in wiki]))
        topics = [
            m.group(1).strip()
            for r in wiki
            if (m := re.search(r"(?:of|is|have|has) (.+?)\s*\??$", r["input"]))
        ]
        self.topic = pool(sorted({t for t in topics if 2 < len(t) < 60}))

        mmlu = [
            row
            for p in fixture("mmlu", "*/*.csv", "mmlu/[dv]*/*.csv")
            for row in csv.reader(p.open(encoding="utf-8"))
        ]
        self.mmlu_rows = mmlu
        self.mmlu_question = pool([r[0] for r in mmlu])
        self.option = pool([o for r in mmlu for o in r[1:5] if o.strip()])

        posts = fixture("stackexchange", "*/Posts*.xml", "stackexchange/*/Posts.xml")
        rows = [e.attrib for p in posts for e in ElementTree.parse(p).getroot()]
        self.se_title = pool([r["Title"] for r in rows if r.get("Title")])
        paras = [
            m.group(0)
            for r in rows
            for m in re.finditer(r"<(p|pre|blockquote|ul|ol)>.*?</\1>", r.get("Body", ""), re.S)
        ]
        self.se_para = pool([p for p in paras if len(re.sub(r"<[^>]+>", " ", p).split()) >= 3])
        self.se_tags = pool([r["Tags"] for r in rows if r.get("Tags")])

        chat = json.loads(
            fixture("chatdoctor", "*.json", "chatdoctor/H*.json")[0].read_text(encoding="utf-8")
        )
        chat += json.loads((EXAMPLES / "chatdoctor/HealthCareMagic-100k.json").read_text())
        self.patient = pool(split_sentences([r["input"] for r in chat], 3))
        self.doctor = pool(split_sentences([r["output"] for r in chat], 3))

        mediqa = [ElementTree.parse(p).getroot() for p in fixture("mediqa", "*.xml", "mediqa/*.xml")]
        self.mediqa_question = pool(
            [q.findtext("QuestionText") or "" for r in mediqa for q in r.iter("Question")]
        )
        self.mediqa_sentence = pool(
            split_sentences([a.findtext("AnswerText") or "" for r in mediqa for a in r.iter("Answer")])
        )

        causal = list(csv.DictReader(fixture("pubmed_causal", "*.csv", "pubmed_causal/*.csv")[0].open()))
        self.causal = pool([r["sentence"] for r in causal])
        advice = fixture("pubmed_health_advice", "*.csv", "pubmed_health_advice/*.csv")
        self.advice_rows = [row for p in advice for row in csv.DictReader(p.open(encoding="utf-8"))]
        self.advice = pool([r["sentence"] for r in self.advice_rows])

        self.oa_trees = [
            json.loads(line)
            for line in fixture("openassistant", "*.jsonl", "openassistant/*.jsonl")[0].open(encoding="utf-8")
        ]
        prompts, replies = [], []
        for tree in self.oa_trees:
            for m in _messages(tree["prompt"]):
                (prompts if m["role"] == "prompter" else replies).append(m["text"])
        self.oa_prompt, self.oa_reply = pool(prompts), pool(split_sentences(replies, 3))

        vignettes = [
            json.loads(line)["question"] for p in (EXAMPLES / "medqa/US").glob("*.jsonl") for line in p.open()
        ]
        vignettes += [
            q["question"] for p in (EXAMPLES / "usmle").glob("step?.json") for q in json.loads(p.read_text())
        ]
        vignette = split_sentences(vignettes, 3) + self.patient.items[:200]
        self.clinical = pool([s for s in vignette if not s.endswith("?")])
        asks = [s for s in split_sentences(vignettes, 3) if s.endswith("?")]
        self.ask = pool(asks + [q for q in self.mmlu_question.items if q.endswith("?")])

    def vignette(self) -> str:
        age, who = self.rng.randint(2, 88), self.rng.choice(("man", "woman", "boy", "girl"))
        return f"A {age}-year-old {who} comes to the physician. {self.clinical.some(3, 7)} {self.ask.one()}"


def _messages(msg: dict) -> Iterator[dict]:
    yield msg
    for reply in msg.get("replies", []):
        yield from _messages(reply)


# --------------------------------------------------------------------------- writers


def _xml_attr(text: str) -> str:
    return (
        text.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("\r", "&#xD;")
        .replace("\n", "&#xA;")
    )


def _xml_text(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _json_array(path: Path, rows: Iterator[dict], indent: int = 4, newline: str = "\n") -> int:
    """A JSON array written object by object, in the published files' indented layout."""
    n = 0
    pad = " " * indent
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write("[")
        for row in rows:
            body = json.dumps(row, indent=indent, ensure_ascii=False).replace("\n", "\n" + pad)
            f.write(("," if n else "") + newline + pad + body.replace("\n", newline))
            n += 1
        f.write(newline + "]")
    return n


def write_stackexchange(t: Texts, folder: Path, site: str, kept: int, rng: random.Random) -> dict[str, int]:
    """A site's dump: Posts.xml (rows by Id, BOM and CRLF like the dumps) in `<site>.stackexchange.com.7z`."""
    import py7zr

    host = f"{site}.stackexchange.com"
    questions = max(1, round(kept * 0.9))
    per_q = [0] * questions
    for _ in range(kept):
        per_q[rng.randrange(questions)] += 1
    low = [0] * questions
    for _ in range(2 * kept):
        low[rng.randrange(questions)] += 1
    counts = {"rows": 0, "kept_answers": kept}
    folder.mkdir(parents=True, exist_ok=True)
    posts = folder / "Posts.xml"
    pid = 0
    with open(posts, "w", encoding="utf-8-sig", newline="") as f:
        f.write('<?xml version="1.0" encoding="utf-8"?>\r\n<posts>\r\n')

        def row(**attrs: Any) -> None:
            f.write("  <row " + " ".join(f'{k}="{_xml_attr(str(v))}"' for k, v in attrs.items()) + " />\r\n")
            counts["rows"] += 1

        date = "2019-03-14T10:22:31.410"
        for q in range(questions):
            pid += 1
            qid, answers = pid, [(rng.randint(5, 250), True) for _ in range(per_q[q])]
            answers += [(rng.randint(-3, 4), False) for _ in range(low[q])]
            rng.shuffle(answers)
            accepted = qid + 1 + answers.index(max(answers)) if answers and rng.random() < 0.6 else None
            row(
                Id=qid,
                PostTypeId=1,
                **({"AcceptedAnswerId": accepted} if accepted else {}),
                CreationDate=date,
                Score=rng.randint(0, 80),
                ViewCount=rng.randint(20, 90_000),
                Body=t.se_para.some(1, 4, "\n\n") + "\n",
                OwnerUserId=rng.randint(1, 99_999),
                LastActivityDate=date,
                Title=t.se_title.splice(),
                Tags=t.se_tags.one(),
                AnswerCount=len(answers),
                CommentCount=rng.randint(0, 9),
                ContentLicense="CC BY-SA 4.0",
            )
            for score, _ in answers:
                pid += 1
                row(
                    Id=pid,
                    PostTypeId=2,
                    ParentId=qid,
                    CreationDate=date,
                    Score=score,
                    Body=t.se_para.some(1, 5, "\n\n") + "\n",
                    OwnerUserId=rng.randint(1, 99_999),
                    LastActivityDate=date,
                    CommentCount=rng.randint(0, 9),
                    ContentLicense="CC BY-SA 4.0",
                )
            if rng.random() < 0.01:  # a tag's wiki excerpt and wiki
                for kind in (4, 5):
                    pid += 1
                    row(
                        Id=pid,
                        PostTypeId=kind,
                        CreationDate=date,
                        Score=0,
                        Body=t.se_para.one(),
                        CommentCount=0,
                        ContentLicense="CC BY-SA 4.0",
                    )
        f.write("</posts>")
    archive = folder / f"{host}.7z"
    with py7zr.SevenZipFile(archive, "w", filters=[{"id": py7zr.FILTER_LZMA2, "preset": 1}]) as z:
        z.write(posts, "Posts.xml")
    posts.unlink()
    return counts


def write_flashcards(t: Texts, folder: Path, cards: int, rng: random.Random) -> dict[str, int]:
    """Anki packages (.apkg, genanki's collection.anki2): basic and cloze notes, 3% more with an image."""
    import genanki

    questions = t.mmlu_question.items + t.wiki_question.items + t.mediqa_question.items
    fronts = Pool([q for q in questions if len(q) <= 200], rng)  # a card's front is short
    folder.mkdir(parents=True, exist_ok=True)
    decks = [
        ("Medical Curriculum::Basic Sciences", 0.5),
        ("Medical Curriculum::Clinical", 0.3),
        ("Medical Curriculum::Pharmacology", 0.2),
    ]
    written, images, guid = 0, 0, 0
    for d, (name, share) in enumerate(decks):
        n = cards - written if d == len(decks) - 1 else round(cards * share)
        deck = genanki.Deck(1_712_000_000 + d, name)
        for i in range(n + round(n * 0.03)):
            guid += 1
            back = t.wiki_sentence.some(1, 2)
            if i >= n:  # the extra notes have an image: medAlpaca removed those
                fields, model = [f'{fronts.one()} <img src="fig{guid}.png">', back], genanki.BASIC_MODEL
                images += 1
            elif rng.random() < 0.1:
                words = t.wiki_sentence.one().split()
                k = rng.randrange(len(words))
                words[k] = "{{c1::" + words[k] + "}}"
                fields, model = (
                    [" ".join(words), t.wiki_sentence.one() if rng.random() < 0.5 else ""],
                    genanki.CLOZE_MODEL,
                )
            else:
                front = fronts.one()
                fields = [
                    f"<b>{front}</b>" if rng.random() < 0.2 else front,
                    back.replace(". ", ".<br>", 1) if rng.random() < 0.3 else back,
                ]
                model = genanki.BASIC_MODEL
            deck.add_note(genanki.Note(model=model, fields=fields, guid=f"v1s{guid:07d}"))
        _write_apkg(deck, folder / f"{name.split('::')[1].lower().replace(' ', '_')}.apkg")
        written += n
    return {"cards": written, "with_image": images}


def _write_apkg(deck: Any, path: Path) -> None:
    """genanki's package with a fixed timestamp and ids (as examples/anki/make_deck.py writes it)."""
    import genanki

    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "collection.anki2"
        con = sqlite3.connect(db)
        ids = iter(range(1_700_000_000_000, 1_700_000_000_000 + 10_000_000))
        genanki.Package(deck).write_to_db(con.cursor(), 1_700_000_000.0, ids)
        con.commit()
        con.close()
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.write(db, "collection.anki2")
            zf.writestr("media", "{}")


HEADINGS = [
    "Overview",
    "Historical Perspective",
    "Classification",
    "Pathophysiology",
    "Causes",
    "Differentiating from other Diseases",
    "Epidemiology and Demographics",
    "Risk Factors",
    "Screening",
    "Natural History, Complications and Prognosis",
    "Diagnosis",
    "Treatment",
    "Prevention",
]
SUBHEADINGS = [
    "History and Symptoms",
    "Physical Examination",
    "Laboratory Findings",
    "Imaging Findings",
    "Medical Therapy",
    "Surgery",
    "Primary Prevention",
    "Secondary Prevention",
]


def _wikitext_paragraph(t: Texts, rng: random.Random) -> str:
    """Section text with the markup WikiDoc chapters carry: links, bold, refs, lists."""
    parts = []
    for s in rng.choices(t.wiki_sentence.items, k=rng.randint(2, 6)):
        words = s.split()
        k = rng.randrange(len(words))
        if rng.random() < 0.5 and words[k].isalpha():
            words[k] = (
                f"[[{words[k]}]]" if rng.random() < 0.5 else f"[[{words[k].lower()} disease|{words[k]}]]"
            )
        s = " ".join(words)
        if rng.random() < 0.15:
            s += f'<ref name="r{rng.randrange(999)}">{t.title.one()}</ref>'
        parts.append(f"* {s}" if rng.random() < 0.1 else s)
    return "\n".join(p if p.startswith("*") else p + "\n" for p in parts)


def write_wikidoc(t: Texts, folder: Path, sections: int, rng: random.Random) -> dict[str, int]:
    """A MediaWiki export (Special:Export, export-0.10) of Living Textbook chapters, in two files."""
    folder.mkdir(parents=True, exist_ok=True)
    head = (
        '<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.10/" version="0.10" xml:lang="en">\n'
        "  <siteinfo>\n    <sitename>wikidoc</sitename>\n    <dbname>wikidoc</dbname>\n"
        "    <generator>MediaWiki 1.35.1</generator>\n    <case>first-letter</case>\n"
        '    <namespaces>\n      <namespace key="0" case="first-letter" />\n    </namespaces>\n'
        "  </siteinfo>\n"
    )
    made, pages, redirects, titles = 0, 0, 0, {}
    files = [open(folder / f"wikidoc_textbook_{i}.xml", "w", encoding="utf-8") for i in (1, 2)]
    for f in files:
        f.write(head)
    while made < sections:
        pages += 1
        topic = t.topic.one()
        titles[topic] = titles.get(topic, 0) + 1
        title = topic if titles[topic] == 1 else f"{topic} ({titles[topic]})"
        if rng.random() < 0.02:
            text, redirects = f"#REDIRECT [[{t.topic.one()}]]", redirects + 1
        else:
            body = [f"{{{{{title}}}}}\n{{{{CMG}}}}; {{{{AE}}}} Editor, M.D.\n"]
            for h in rng.sample(HEADINGS, rng.randint(4, 9)):
                if made >= sections:
                    break
                if h in ("Diagnosis", "Treatment") and rng.random() < 0.6:
                    body.append(f"=={h}==")  # a parent heading with no text of its own: too_short
                    for sub in rng.sample(SUBHEADINGS, rng.randint(1, 3)):
                        if made < sections:
                            body.append(f"==={sub}===\n{_wikitext_paragraph(t, rng)}")
                            made += 1
                else:
                    body.append(f"=={h}==\n{_wikitext_paragraph(t, rng)}")
                    made += 1
            body.append("==References==\n{{reflist|2}}\n\n[[Category:Disease]]")
            text = "\n".join(body)
        files[pages % 2].write(
            f"  <page>\n    <title>{_xml_text(title)}</title>\n    <ns>0</ns>\n"
            f"    <id>{100_000 + pages}</id>\n    <revision>\n      <id>{2_000_000 + pages}</id>\n"
            "      <timestamp>2022-05-09T14:20:00Z</timestamp>\n      <contributor>\n"
            "        <username>Editor</username>\n        <id>4242</id>\n      </contributor>\n"
            "      <model>wikitext</model>\n      <format>text/x-wiki</format>\n"
            f'      <text bytes="{len(text.encode())}" xml:space="preserve">{_xml_text(text)}</text>\n'
            "    </revision>\n  </page>\n"
        )
    for f in files:
        f.write("</mediawiki>\n")
        f.close()
    return {"sections": made, "pages": pages, "redirects": redirects}


def write_cord19(t: Texts, path: Path, rows: int, rng: random.Random) -> dict[str, int]:
    """metadata.csv: the fixture's 19 columns, other cells from a real row; 6% without abstract, 2%
    rows repeating an earlier cord_uid (another source of the same paper), as in the releases."""
    path.parent.mkdir(parents=True, exist_ok=True)
    no_abstract = repeats = 0
    recent: list[str] = []
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(t.cord_header)
        for i in range(rows):
            row = dict(rng.choice(t.cord_rows))
            if recent and rng.random() < 0.02:
                row["cord_uid"], repeats = rng.choice(recent), repeats + 1
            else:
                row["cord_uid"] = _base36((i * 2_654_435_761 + 12_345) % 36**8)
                recent = (recent + [row["cord_uid"]])[-1000:]
            row["title"] = t.title.splice()
            if rng.random() < 0.06:
                row["abstract"], no_abstract = "", no_abstract + 1
            else:
                row["abstract"] = t.abstract.some(4, 11)
            w.writerow(row.values())
    return {"rows": rows, "no_abstract": no_abstract, "repeated_cord_uid": repeats}


def _base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    for _ in range(8):
        n, r = divmod(n, 36)
        out = digits[r] + out
    return out


def write_chatdoctor(t: Texts, folder: Path, counts: dict[str, int], rng: random.Random) -> dict[str, int]:
    folder.mkdir(parents=True, exist_ok=True)
    instruction = (
        "If you are a doctor, please answer the medical questions based on the patient's description."
    )

    def dialogue() -> tuple[str, str]:
        return f"Hi doctor, {t.patient.some(2, 6)}", f"Hi, thanks for your query. {t.doctor.some(3, 8)}"

    out = {}
    for name, n in counts.items():
        if name == "iCliniq.json":
            rows = (
                {
                    "input": q,
                    "answer_icliniq": a,
                    "answer_chatgpt": t.doctor.some(3, 6),
                    "answer_chatdoctor": t.doctor.some(2, 5),
                }
                for q, a in (dialogue() for _ in range(n))
            )
            out[name] = _json_array(folder / name, rows)
        else:
            rows = (
                {"instruction": instruction, "input": q, "output": a}
                for q, a in (dialogue() for _ in range(n))
            )
            crlf = name == "chatdoctor5k.json"  # GenMedGPT-5k: CRLF, 6-space indent
            out[name] = _json_array(folder / name, rows, 6 if crlf else 4, "\r\n" if crlf else "\n")
    return out


def write_openassistant(t: Texts, path: Path, trees: int, rng: random.Random) -> dict[str, int]:
    """oasst1 trees (.jsonl.gz): the fixture trees' shapes, re-keyed, with new prompts and replies."""
    path.parent.mkdir(parents=True, exist_ok=True)
    messages = 0

    def copy(msg: dict, parent: str | None, tree_id: str | None) -> dict:
        nonlocal messages
        messages += 1
        mid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        text = t.oa_prompt.splice() if msg["role"] == "prompter" else t.oa_reply.some(2, 8)
        out = {
            "message_id": mid,
            "parent_id": parent,
            "user_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "created_date": "2023-02-08T17:28:12.354295+00:00",
            "text": text,
            "role": msg["role"],
            "lang": "en",
            "review_count": 3,
            "review_result": True,
            "deleted": False,
            "synthetic": False,
            "model_name": None,
            "message_tree_id": tree_id or mid,
            "tree_state": "ready_for_export",
            **({"rank": msg["rank"]} if "rank" in msg else {}),
        }
        out["replies"] = [copy(r, mid, tree_id or mid) for r in msg.get("replies", [])]
        return out

    with gzip.open(path, "wt", encoding="utf-8") as f:
        for _ in range(trees):
            prompt = copy(rng.choice(t.oa_trees)["prompt"], None, None)
            tree = {
                "message_tree_id": prompt["message_id"],
                "tree_state": "ready_for_export",
                "prompt": prompt,
            }
            f.write(json.dumps(tree, ensure_ascii=False) + "\n")
    return {"trees": trees, "messages": messages}


def _options(t: Texts, letters: str, mark: Marker | None = None) -> dict[str, str]:
    """Distinct options from the fixture's; a benchmark's are marked (they are indexed with the question)."""
    picked: list[str] = []
    while len(picked) < len(letters):
        o = t.option.one()
        if o not in picked:
            picked.append(o)
    return dict(zip(letters, [mark(o) for o in picked] if mark else picked, strict=True))


def write_medqa(t: Texts, path: Path, n: int, rng: random.Random, plant: list[dict] | None = None) -> int:
    """MedQA US JSON Lines (5 options); ``plant``: test questions copied in (known contamination)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    for _ in range(n):
        options = _options(t, "ABCDE")
        idx = rng.choice("ABCDE")
        rows.append(
            {
                "question": t.vignette(),
                "answer": options[idx],
                "options": options,
                "meta_info": rng.choice(("step1", "step2&3")),
                "answer_idx": idx,
            }
        )
    for i, q in enumerate(plant or []):
        rows[(i * 7919) % len(rows)] = q
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return len(rows)


def write_benchmarks(
    t: Texts, raw: Path, size: dict[str, Any], rng: random.Random
) -> tuple[dict, list[dict]]:
    """The four benchmarks' test files, every question marked (see Marker); returns the MedQA test rows."""
    mark = Marker("qz")
    out: dict[str, Any] = {}
    folder = raw / "mmlu_test/data/test"
    folder.mkdir(parents=True, exist_ok=True)
    for subject, n in size["mmlu_test"].items():
        with open(folder / f"{subject}_test.csv", "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            for _ in range(n):
                w.writerow(
                    [mark(t.mmlu_question.splice()), *_options(t, "ABCD", mark).values(), rng.choice("ABCD")]
                )
    out["mmlu_test"] = sum(size["mmlu_test"].values())
    medqa_test = []
    for _ in range(size["medqa_test"]):
        options = _options(t, "ABCDE", mark)
        idx = rng.choice("ABCDE")
        medqa_test.append(
            {
                "question": mark(t.vignette()),
                "answer": options[idx],
                "options": options,
                "meta_info": "step1",
                "answer_idx": idx,
            }
        )
    path = raw / "medqa_test/data_clean/questions/US/test.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in medqa_test), encoding="utf-8")
    out["medqa_test"] = len(medqa_test)
    folder = raw / "usmle"
    folder.mkdir(parents=True, exist_ok=True)
    images = {}
    for step, (n, with_image) in size["usmle"].items():
        questions = [
            {"no": i + 1, "question": mark(t.vignette()), "options": _options(t, "ABCDE", mark)}
            for i in range(n)
        ]
        _json_array(folder / f"step{step}.json", iter(questions))
        (folder / f"step{step}_solutions.json").write_text(
            json.dumps({str(i + 1): rng.choice("ABCDE") for i in range(n)}, indent=4)
        )
        images[f"step{step}"] = sorted(rng.sample(range(1, n + 1), min(with_image, n)))
    (folder / "question_with_images.json").write_text(json.dumps(images))
    out["usmle"] = sum(n for n, _ in size["usmle"].values())
    folder = raw / "pubmedqa"
    folder.mkdir(parents=True, exist_ok=True)
    data, truth = {}, {}
    for i in range(2 * size["pubmedqa"]):  # ori_pqal.json holds PQA-L's 1,000; the test set is 500
        pmid = str(20_000_000 + i * 37)
        decision = rng.choice(("yes", "no", "maybe"))
        data[pmid] = {
            "QUESTION": mark(t.ask.splice()).rstrip("?") + "?",
            "CONTEXTS": [mark(t.abstract.some(2, 4)) for _ in range(rng.randint(2, 4))],
            "LABELS": ["BACKGROUND", "METHODS", "RESULTS"],
            "MESHES": ["Humans"],
            "YEAR": "2012",
            "reasoning_required_pred": decision,
            "reasoning_free_pred": decision,
            "final_decision": decision,
            "LONG_ANSWER": mark(t.abstract.some(1, 2)),
        }
        if i % 2:
            truth[pmid] = decision
    (folder / "ori_pqal.json").write_text(json.dumps(data, indent=4))
    (folder / "test_ground_truth.json").write_text(json.dumps(truth))
    out["pubmedqa"] = len(truth)
    return out, medqa_test


def write_mediqa(t: Texts, folder: Path, answers: int, rng: random.Random) -> dict[str, int]:
    """MEDIQA-AnS (question_driven_answer_summarization_primary_dataset.json): 3-4 answers a question."""
    folder.mkdir(parents=True, exist_ok=True)
    data: dict[str, Any] = {}
    made, q = 0, 0
    while made < answers:
        q += 1
        entry: dict[str, Any] = {
            "question": t.mediqa_question.splice().rstrip("?") + "?",
            "multi_abs_summ": t.mediqa_sentence.some(2, 4),
            "multi_ext_summ": t.mediqa_sentence.some(2, 4),
            "answers": {},
        }
        for k in range(min(rng.randint(3, 4), answers - made)):
            made += 1
            entry["answers"][f"{q}_Answer{k + 1}"] = {
                "article": t.mediqa_sentence.some(15, 45),
                "section": t.mediqa_sentence.some(3, 9),
                "url": f"https://medlineplus.gov/ency/article/{q:06d}.htm",
                "answer_abs_summ": t.mediqa_sentence.some(2, 4),
                "answer_ext_summ": t.mediqa_sentence.some(2, 4),
                "rating": rng.choice(("3", "4")),
            }
        data[str(q)] = entry
    (folder / "question_driven_answer_summarization_primary_dataset.json").write_text(
        json.dumps(data, indent=4)
    )
    return {"questions": q, "answers": made, "records": 4 * made}


def write_advice(t: Texts, folder: Path, counts: dict[str, int], rng: random.Random) -> dict[str, int]:
    """The three annotation CSVs, each with its own columns (filled from a fixture row where it has them)."""
    folder.mkdir(parents=True, exist_ok=True)
    for section, n in counts.items():
        header = ["label", "pmid", "sentence", *ADVICE_FILES[section][1]]
        with open(folder / f"annotations_{section}.csv", "w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=header, lineterminator="\n", extrasaction="ignore")
            w.writeheader()
            cells = {k: [r[k] for r in t.advice_rows if r.get(k)] or ["0"] for k in header[3:]}
            for i in range(n):
                row = {k: rng.choice(v) for k, v in cells.items()}
                row.update(
                    label=rng.choice("0012"), pmid=str(30_000_000 + i * 13), sentence=t.advice.splice()
                )
                w.writerow(row)
    return dict(counts)


def generate(out: Path, scale: float, seed: int = 42) -> dict[str, Any]:
    """Write the whole tree under ``out`` (laid out as data/raw/); returns what was written."""
    size = sizes(scale)
    t = Texts(random.Random(f"{seed}-texts"))
    sub = lambda name: random.Random(f"{seed}-{name}")  # noqa: E731  one stream per source
    made: dict[str, Any] = {}
    made["flashcards"] = write_flashcards(t, out / "flashcards", size["flashcards"], sub("flashcards"))
    made["wikidoc"] = write_wikidoc(t, out / "wikidoc", size["wikidoc"], sub("wikidoc"))
    pi = (
        {
            "instruction": "Answer this question truthfully",
            "input": t.wiki_question.splice().rstrip("?") + "?",
            "output": t.wiki_sentence.some(2, 9),
        }
        for _ in range(size["wikidoc_patient_information"])
    )
    folder = out / "wikidoc_patient_information"
    folder.mkdir(parents=True, exist_ok=True)
    made["wikidoc_patient_information"] = _json_array(folder / "medical_meadow_small.json", pi)
    for site in SITES:
        name = f"stackexchange_{site}"
        made[name] = write_stackexchange(t, out / name, site, size[name], sub(name))
    made["mediqa"] = write_mediqa(t, out / "mediqa", size["mediqa"], sub("mediqa"))
    made["cord19"] = write_cord19(t, out / "cord19/metadata.csv", size["cord19"], sub("cord19"))
    for split in ("dev", "val"):  # the whole MMLU dev and val files are fixtures: copied as they are
        folder = out / f"mmlu/data/{split}"
        folder.mkdir(parents=True, exist_ok=True)
        for p in fixture("mmlu", f"{split}/*.csv"):
            shutil.copyfile(p, folder / p.name)
    made["mmlu"] = sum(
        1 for p in (out / "mmlu/data").glob("*/*.csv") for _ in csv.reader(p.open(encoding="utf-8"))
    )
    made["benchmarks"], medqa_test = write_benchmarks(t, out, size, sub("benchmarks"))
    planted = medqa_test[: max(1, round(0.005 * size["medqa"]))]
    made["medqa"] = write_medqa(
        t, out / "medqa/data_clean/questions/US/train.jsonl", size["medqa"], sub("medqa"), planted
    )
    made["PLANTED"] = len(planted)
    made["pubmed_health_advice"] = write_advice(
        t, out / "pubmed_health_advice", size["pubmed_health_advice"], sub("advice")
    )
    r = sub("causal")
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["sentence", "label"])
    for _ in range(size["pubmed_causal"]):
        w.writerow([t.causal.splice(), r.choice("0123")])
    (out / "pubmed_causal").mkdir(parents=True, exist_ok=True)
    (out / "pubmed_causal/pubmed_causal_language_use.csv").write_text(buf.getvalue(), encoding="utf-8")
    made["pubmed_causal"] = size["pubmed_causal"]
    made["chatdoctor"] = write_chatdoctor(t, out / "chatdoctor", size["chatdoctor"], sub("chatdoctor"))
    made["openassistant"] = write_openassistant(
        t, out / "openassistant/2023-04-12_oasst_ready.trees.jsonl.gz", size["openassistant"], sub("oasst")
    )
    return made


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--scale", type=float, default=1.0)
    args = ap.parse_args()
    print(json.dumps(generate(args.out, args.scale), indent=1))


if __name__ == "__main__":
    main()
