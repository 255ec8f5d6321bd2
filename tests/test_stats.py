"""`meadow stats`: the HTML report on a build (the offline demo, and a synthetic build with every
step's fields), its charts, the markdown summary the dataset card embeds, errors, and the report
opened in a real headless browser."""

from __future__ import annotations

import base64
import copy
import html
import io
import json
import os
import shutil
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
import yaml
from PIL import Image
from typer.testing import CliRunner

from meadow import sources
from meadow.build.write import dataset_card
from meadow.cli import app
from meadow.errors import MeadowError
from meadow.schemas.manifest import Manifest
from meadow.schemas.outputs import DROPPED_NAME, JSON_NAME, MANIFEST_NAME
from meadow.stats import plots, tokens
from meadow.stats import report as report_module
from meadow.stats.report import write_report
from meadow.stats.summary import STEPS, Funnel, funnels, steps_not_run, summary_markdown

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "recipes" / "demo.yaml"
CHROMIUM = os.environ.get("MEADOW_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
NASTY = """<script>alert("x")</script> & 'quotes' <b>bold</b>"""


# --- builds ------------------------------------------------------------------------------------


def record(source: str, rid: str, instruction: str, input_: str = "", output: str = "an answer") -> dict:
    return {"instruction": instruction, "input": input_, "output": output, "source": source, "id": rid}


def synthetic_build(root: Path) -> Path:
    """A build folder as a build with every step writes it: filters, decontamination (with
    contamination.jsonl), exact and near dedup, subsample, dropped_samples.json; texts with <, &, quotes."""
    out = root / "synthetic"
    out.mkdir(parents=True)
    manifest = {
        "meadow_version": "0.1.0",
        "recipe_path": "recipes/synthetic.yaml",
        "recipe_sha256": "ab" * 32,
        "recipe": {"name": "synthetic", "description": "A build <with> every step & more", "seed": 3},
        "sources": {
            "alpha": {
                "loader": "medqa",
                "inputs": [{"path": "data/raw/alpha.jsonl", "bytes": 123, "sha256": "cd" * 32}],
                "read": 20,
                "dropped": {"contaminated": 2, "filter_too_short": 3, "malformed_row": 2},
                "dropped_total": 7,
                "drop_examples": {"malformed_row": ["data/raw/alpha.jsonl:3: bad <json> & worse"]},
                "contaminated": {"medqa": 1, "mmlu": 1},
                "duplicates": 1,
                "duplicate_of": {"alpha": 1},
                "near_duplicates": 2,
                "near_duplicate_of": {"beta": 2},
                "unique": 12,
                "n": 5,
                "sampled": 5,
                "seconds": 0.1,
            },
            "beta": {
                "loader": "mmlu",
                "read": 10,
                "dropped": {"empty_output": 1, "filter_language": 1},
                "dropped_total": 2,
                "contaminated": {},
                "duplicates": 0,
                "near_duplicates": 0,
                "unique": 8,
                "n": "all",
                "sampled": 8,
            },
            "gamma": {
                "loader": "cord19",
                "read": 4,
                "dropped": {"contaminated": 1},
                "dropped_total": 1,
                "contaminated": {"medqa": 1},
                "duplicates": 0,
                "near_duplicates": 0,
                "unique": 3,
                "n": "all",
                "sampled": 3,
            },
        },
        "totals": {"read": 34, "dropped": 10, "duplicates": 1, "unique": 23, "records": 16},
        "decontamination": {
            "ngram": 13,
            "short_ngram": 8,
            "benchmarks": {
                "medqa": {
                    "kind": "medqa",
                    "paths": ["data/raw/medqa/test.jsonl"],
                    "questions": 1273,
                    "hits": 2,
                },
                "mmlu": {"kind": "mmlu", "paths": ["data/raw/mmlu/test"], "questions": 1089, "hits": 1},
                "pubmedqa": {
                    "kind": "pubmedqa",
                    "paths": ["data/raw/pubmedqa.json"],
                    "questions": 500,
                    "hits": 0,
                },
            },
        },
        "near_dedup": {"threshold": 0.8, "shingle": 5, "num_perm": 128, "pairs": {"beta <- alpha": 2}},
        "versions": {"python": "3.11"},
        "platform": "linux",
        "seconds": 1.5,
    }
    records = [
        record("alpha/x", f"alpha:{i}", f"alpha question {i} " + NASTY, "", "alpha answer " * 3)
        for i in range(5)
    ]
    records += [
        record("beta/y", f"beta:{i}", f"beta question {i}?", "some context " * i, "yes") for i in range(8)
    ]
    records += [record("gamma/z", f"gamma:{i}", f"gamma {i}", "", "a & b < c") for i in range(3)]
    (out / JSON_NAME).write_text(json.dumps(records, indent=4), encoding="utf-8")
    (out / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    dropped = {
        "alpha": {
            "contaminated": [
                {
                    "id": "alpha:c1",
                    "instruction": "leaked <q>",
                    "input": "",
                    "output": "A",
                    "detail": "medqa:q7",
                }
            ],
            "filter_too_short": [
                {
                    "id": "alpha:f1",
                    "instruction": "DROPPED " + NASTY,
                    "input": "",
                    "output": "x",
                    "detail": "3 < 5",
                }
            ],
        },
        "beta": {"filter_language": [{"id": "beta:f1", "instruction": "¿Qué?", "input": "", "output": "sí"}]},
    }
    (out / DROPPED_NAME).write_text(json.dumps(dropped), encoding="utf-8")
    hits = [
        {
            "source": "alpha",
            "id": f"alpha:c{i}",
            "instruction": f"leaked question {i} <img src=x onerror=alert(1)>",
            "benchmark": "medqa" if i < 2 else "mmlu",
            "item_id": f"q{i}",
            "match": "ngram",
            "matched_text": "the patient & the <doctor>",
        }
        for i in range(3)
    ]
    (out / "contamination.jsonl").write_text("".join(json.dumps(h) + "\n" for h in hits), encoding="utf-8")
    return out


@pytest.fixture
def synthetic(tmp_path: Path) -> Path:
    return synthetic_build(tmp_path)


# --- reading the HTML --------------------------------------------------------------------------


class Page(HTMLParser):
    """Tables (rows of cell texts), images, links and every tag of an HTML page."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.tables: dict[str, list[list[str]]] = {}
        self.all_tables: list[list[list[str]]] = []
        self.images: list[dict[str, str]] = []
        self.tags: list[str] = []
        self.urls: list[str] = []
        self._table: list[list[str]] | None = None
        self._cell: list[str] | None = None
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        self.tags.append(tag)
        self.urls += [a[k] for k in ("src", "href") if k in a]
        if tag == "table":
            self._table = []
            self.all_tables.append(self._table)
            if "id" in a:
                self.tables[a["id"]] = self._table
        elif tag == "tr" and self._table is not None:
            self._table.append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "img":
            self.images.append(a)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._table is not None:
            self._table[-1].append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)

    def row(self, first_cell: str) -> list[str]:
        return next(r for t in self.all_tables for r in t if r and r[0] == first_cell)

    def rows(self, contains: str) -> list[list[str]]:
        return [r for t in self.all_tables for r in t if any(contains in c for c in r)]


def read_report(out: Path) -> tuple[str, Page]:
    text = (out / "index.html").read_text(encoding="utf-8")
    return text, Page(text)


def assert_self_contained(page: Page) -> None:
    assert "script" not in page.tags and "link" not in page.tags and "iframe" not in page.tags
    for url in page.urls:
        assert url.startswith(("data:image/png;base64,", "#")), url[:80]


def assert_png(data: bytes) -> tuple[int, int]:
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    with Image.open(io.BytesIO(data)) as im:
        im.verify()
    with Image.open(io.BytesIO(data)) as im:
        assert im.format == "PNG" and im.width > 200 and im.height > 100
        return im.size


# --- tests -------------------------------------------------------------------------------------


def test_report_on_a_synthetic_build_with_every_step(synthetic: Path):
    result = write_report(synthetic, tokenizer="whitespace")
    out = synthetic / "report"
    assert result.path == out / "index.html" and result.warnings == []
    text, page = read_report(out)
    assert_self_contained(page)

    # the steps table: removed and left after each step, in order
    alpha = [
        "alpha",
        "medqa",
        "20",
        "2",
        "18",
        "3",
        "15",
        "2",
        "13",
        "1",
        "12",
        "2",
        "10",
        "5",
        "5",
        "5",
        "5",
    ]
    assert page.row("alpha") == alpha
    assert page.row("beta")[:13] == ["beta", "mmlu", "10", "1", "9", "1", "8", "0", "8", "0", "8", "0", "8"]
    assert page.row("total")[:5] == ["total", "34", "3", "31", "4"]
    assert "not run" not in " ".join(" ".join(r) for r in page.tables["steps-table"])

    # drop reasons, by step, with the examples escaped
    assert page.rows("filter_too_short")[0][:4] == ["alpha", "filter_too_short", "filtered", "3"]
    assert page.rows("empty_output")[0][:4] == ["beta", "empty_output", "invalid", "1"]
    assert "bad &lt;json&gt; &amp; worse" in text

    # decontamination: settings, benchmarks, per source, the contaminated records
    assert page.rows("data/raw/medqa/test.jsonl")[0] == [
        "medqa",
        "medqa",
        "data/raw/medqa/test.jsonl",
        "1,273",
        "2",
        "2",
    ]
    assert page.rows("pubmedqa")[0][3:] == ["500", "0", "0"]
    assert "ngram <code>13</code>" in text and "short_ngram <code>8</code>" in text
    assert "The first 3 of 3 lines of contamination.jsonl" in text
    assert page.rows("q1")[0] == [
        "alpha",
        "alpha:c1",
        "leaked question 1 <img src=x onerror=alert(1)>",
        "medqa",
        "q1",
        "ngram",
        "the patient & the <doctor>",
    ]
    assert "leaked question 1 &lt;img src=x onerror=alert(1)&gt;" in text

    # exact and near duplicates
    assert page.rows("beta <- alpha")[0] == ["beta <- alpha", "2"]
    assert ["alpha", "2", "beta: 2"] in page.rows("beta: 2")
    assert "threshold <code>0.8</code>" in text and "num_perm <code>128</code>" in text

    # sample records: kept (from the JSON) and dropped (from dropped_samples.json), all escaped
    assert "<script>" not in text and "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in text
    assert "&#x27;quotes&#x27; &lt;b&gt;bold&lt;/b&gt;" in text
    assert page.rows("alpha:0")[0][:2] == ["alpha:0", "alpha question 0 " + NASTY]
    assert page.rows("alpha:f1")[0] == ["alpha:f1", "DROPPED " + NASTY, "", "x", "3 < 5"]
    assert page.rows("beta:f1")[0][:2] == ["beta:f1", "¿Qué?"]
    assert "alpha:3" not in text  # only the first 3 kept records per source

    # lengths, in whitespace words: gamma's outputs are "a & b < c" (5 words)
    assert "whitespace-separated words" in text
    gamma_output = next(r for r in page.rows("gamma") if r[1] == "output")
    assert gamma_output == ["gamma", "output", "3", "0", "5", "5", "5", "5", "5", "5"]

    # charts: files beside index.html, the same bytes embedded as data URIs
    names = {
        "steps.png",
        "records.png",
        "drop_reasons.png",
        "contamination.png",
        "lengths.png",
        "total_lengths.png",
    }
    assert set(result.images) == names
    embedded = [base64.b64decode(img["src"].split(",", 1)[1]) for img in page.images]
    assert len(embedded) == len(names)
    for name in names:
        data = (out / name).read_bytes()
        assert_png(data)
        assert data in embedded
    assert all(img["alt"] for img in page.images)

    # the markdown summary, also written beside the report
    md = (out / "summary.md").read_text()
    assert md == summary_markdown(Manifest.read(synthetic / MANIFEST_NAME))
    assert html.escape(md.splitlines()[0]) in text
    stats = json.loads((out / "stats.json").read_text())
    assert stats["sources"]["alpha"]["removed"]["subsampled"] == 5
    assert stats["lengths"]["measured"] == 16


def test_summary_markdown_and_the_card_reuse_it(synthetic: Path):
    manifest = json.loads((synthetic / MANIFEST_NAME).read_text())
    md = summary_markdown(Manifest.model_validate(manifest))
    lines = md.splitlines()
    steps = "invalid | filtered | contaminated | duplicates | near duplicates"
    assert lines[0] == f"| source | loader | read | {steps} | n | kept |"
    assert lines[2] == "| alpha | `medqa` | 20 | 2 | 3 | 2 | 1 | 2 | 5 | 5 |"
    assert lines[3] == "| beta | `mmlu` | 10 | 1 | 1 | 0 | 0 | 0 | all | 8 |"
    assert lines[-1] == "| **total** |  | **34** | **3** | **4** | **3** | **1** | **2** |  | **16** |"
    assert steps_not_run(Manifest.model_validate(manifest)) == []

    card = dataset_card(Manifest.model_validate(manifest), sources.registry())
    with_license = summary_markdown(
        Manifest.model_validate(manifest),
        {n: sources.get(s["loader"]).license for n, s in manifest["sources"].items()},
    )
    assert with_license.rstrip() in card
    assert card.startswith("---\n")
    meta = yaml.safe_load(card[4 : card.index("\n---\n", 4)])
    assert meta["size_categories"] == ["n<1K"] and meta["configs"][0]["config_name"] == "default"
    assert "not run in this build" not in card

    # an old build: no filter, decontamination or near-dedup fields; a source name with a pipe
    old = copy.deepcopy(manifest)
    del old["decontamination"], old["near_dedup"]
    for s in old["sources"].values():
        s["dropped"] = {
            k: v for k, v in s["dropped"].items() if not k.startswith(("filter_", "contaminated"))
        }
        for key in ("contaminated", "near_duplicates", "near_duplicate_of"):
            s.pop(key, None)
    old["sources"]["a|b"] = old["sources"].pop("gamma")
    old = Manifest.model_validate(old)
    md = summary_markdown(old)
    assert md.splitlines()[0] == "| source | loader | read | invalid | duplicates | n | kept |"
    assert "| a\\|b | `cord19` | 4 | 0 | 0 | all | 3 |" in md
    assert [s.key for s in steps_not_run(old)] == ["filtered", "contaminated", "near_duplicates"]
    card = dataset_card(old, sources.registry())
    yaml.safe_load(card[4 : card.index("\n---\n", 4)])
    assert "not run in this build: filtered, contaminated, near duplicates" in card


def test_report_on_the_demo_build(demo_build: Path, tmp_path: Path):
    build_dir = tmp_path / "demo"
    shutil.copytree(demo_build, build_dir)
    manifest = json.loads((build_dir / MANIFEST_NAME).read_text())
    result = write_report(build_dir, tokenizer="whitespace", samples=2)
    assert result.warnings == []
    text, page = read_report(build_dir / "report")
    assert_self_contained(page)
    # the demo runs every step, and each removes something: the examples plant an echo (filtered),
    # a leaked MedQA test question, an exact and a near duplicate, and CORD-19 is subsampled
    assert "not run in this build" not in text
    steps = {s.key for s in STEPS}
    for f in funnels(Manifest.model_validate(manifest)):
        steps -= {k for k, v in f.removed.items() if v}
    assert steps == set(), steps
    assert manifest["decontamination"]["benchmarks"]["medqa_test"]["hits"] == 1
    assert (build_dir / DROPPED_NAME).is_file() and "This build wrote no dropped_samples.json" not in text
    assert {
        "steps.png",
        "records.png",
        "drop_reasons.png",
        "contamination.png",
        "lengths.png",
        "total_lengths.png",
    } == set(result.images)
    for name, s in manifest["sources"].items():
        row = page.row(name)
        assert row[2] == f"{s['read']:,}" and row[-1] == f"{s['sampled']:,}", name
        assert "not run" not in row, name
    # identifiers wrap between their parts in a narrow column, never inside a word
    assert '<td class="mono">pubmed_<wbr>health_<wbr>advice</td>' in text
    assert "stackexchange/<wbr>health:<wbr>" in text
    assert "overflow-wrap: anywhere; max-width: 18rem" not in text
    # per source, its first records from the merged JSON, under the recipe's source name
    records = json.loads((build_dir / JSON_NAME).read_text())
    first = records[0]
    assert page.rows(first["id"])[0][:2] == [first["id"], first["instruction"]]
    stats = json.loads((build_dir / "report" / "stats.json").read_text())
    assert stats["lengths"]["records"] == len(records) == manifest["totals"]["records"]
    assert set(stats["lengths"]["sources"]) == set(manifest["sources"])
    for f in funnels(Manifest.model_validate(manifest)):
        assert f.consistent, f.source


def test_max_records_measures_every_kth_record_of_each_source(synthetic: Path, tmp_path: Path):
    write_report(synthetic, tokenizer="whitespace", max_records=4, output=tmp_path / "r")
    stats = json.loads((tmp_path / "r" / "stats.json").read_text())["lengths"]
    # 16 records, at most 4: every 4th record of each source (alpha 5 -> 2, beta 8 -> 2, gamma 3 -> 1)
    assert stats["every"] == 4 and stats["measured"] == 5 and stats["records"] == 16
    assert stats["sources"]["beta"]["output"]["records"] == 2
    assert "1 in 4 records of each source (5 of 16)" in (tmp_path / "r" / "index.html").read_text()
    assert not (synthetic / "report").exists()


def test_the_report_flags_a_json_that_disagrees_with_the_manifest(synthetic: Path):
    records = json.loads((synthetic / JSON_NAME).read_text())
    (synthetic / JSON_NAME).write_text(json.dumps(records[:-1]))
    result = write_report(synthetic, tokenizer="whitespace")
    assert result.warnings == ["gamma: the manifest says 3 kept, merged_medical_meadow.json holds 2"]
    assert "Check this build" in result.path.read_text()


@pytest.mark.slow  # converts the embedded GGUF once per test session (shared through meadow_cache)
def test_smollm2_tokenizer_counts_tokens(synthetic: Path, meadow_cache: Path, tmp_path: Path):
    from meadow.models import resolve_model

    result = write_report(synthetic)  # the default: the embedded SmolLM2's tokenizer
    text = result.path.read_text()
    model = resolve_model("smollm2")
    tokenizer = model.load_tokenizer()
    assert f"Counted with {html.escape(model.identity)} tokenizer, in tokens" in text
    stats = json.loads((result.path.parent / "stats.json").read_text())["lengths"]
    assert stats["unit"] == "tokens"
    expected = len(tokenizer("a & b < c", add_special_tokens=False)["input_ids"])
    assert stats["sources"]["gamma"]["output"]["max"] == expected
    question = "alpha question 0 " + NASTY
    assert stats["sources"]["alpha"]["instruction"]["min"] == len(
        tokenizer(question, add_special_tokens=False)["input_ids"]
    )

    # a folder holding only a tokenizer (no model) counts the same
    tokenizer.save_pretrained(tmp_path / "tok")
    assert not (tmp_path / "tok" / "config.json").exists()
    write_report(synthetic, tokenizer=str(tmp_path / "tok"), output=tmp_path / "r")
    again = json.loads((tmp_path / "r" / "stats.json").read_text())["lengths"]
    assert again["tokenizer"] == "tokenizer tok" and again["sources"] == stats["sources"]


def test_a_tokenizer_without_a_rust_backend_is_called_directly(monkeypatch: pytest.MonkeyPatch):
    class Slow:
        def __call__(self, texts: list[str], **kwargs: Any) -> dict[str, list[list[str]]]:
            assert kwargs["add_special_tokens"] is False
            return {"input_ids": [t.split("-") for t in texts]}

    monkeypatch.setattr(tokens, "_load", lambda name: (Slow(), "slow tokenizer"))
    counter = tokens.token_counter("anything")
    assert counter.count(["a-b-c", "d"]) == [3, 1] and counter.unit == "tokens"
    assert tokens.token_counter("whitespace").count(["a  b\nc", ""]) == [3, 0]


def test_errors_name_the_folder_or_file(tmp_path: Path, synthetic: Path):
    with pytest.raises(MeadowError, match="no such folder"):
        write_report(tmp_path / "missing", tokenizer="whitespace")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(
        MeadowError, match=rf"{empty}: no manifest.json in this folder; expected a build folder"
    ):
        write_report(empty, tokenizer="whitespace")

    manifest = synthetic / MANIFEST_NAME
    good = manifest.read_text()
    manifest.write_text(good[:200])
    with pytest.raises(MeadowError, match=rf"{manifest}: not valid JSON \(line \d+, column \d+"):
        write_report(synthetic, tokenizer="whitespace")
    manifest.write_text('{"recipe": {}}')
    with pytest.raises(MeadowError, match=rf"{manifest}: not a meadow manifest"):
        write_report(synthetic, tokenizer="whitespace")
    manifest.write_text(good)

    hits = synthetic / "contamination.jsonl"
    hits.write_text(hits.read_text() + "{oops\n")
    with pytest.raises(MeadowError, match=rf"{hits}:4: not valid JSON"):
        write_report(synthetic, tokenizer="whitespace")
    hits.unlink()
    (synthetic / JSON_NAME).write_text('[{"instruction": 3}]')
    with pytest.raises(MeadowError, match=r"record 0: 'instruction' is not a string"):
        write_report(synthetic, tokenizer="whitespace")
    (synthetic / JSON_NAME).write_text('[{"instruction": "a", ')
    with pytest.raises(MeadowError, match=r"merged_medical_meadow.json: not a valid JSON array"):
        write_report(synthetic, tokenizer="whitespace")
    with pytest.raises(MeadowError, match="no-such-tokenizer"):
        write_report(synthetic, tokenizer=str(tmp_path / "no-such-tokenizer"))
    assert not (synthetic / "report").exists()

    # the report replaces its folder whole: never the build, nor a folder that is no report
    with pytest.raises(MeadowError, match="would replace the build itself"):
        write_report(synthetic, tokenizer="whitespace", output=synthetic)
    with pytest.raises(MeadowError, match="would replace the build itself"):
        write_report(synthetic, tokenizer="whitespace", output=tmp_path)
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "mine.txt").write_text("keep me")
    with pytest.raises(MeadowError, match="something other than a meadow stats report"):
        write_report(synthetic, tokenizer="whitespace", output=tmp_path / "notes")
    assert (tmp_path / "notes" / "mine.txt").read_text() == "keep me"

    res = CliRunner().invoke(app, ["stats", str(empty), "--tokenizer", "whitespace"])
    assert res.exit_code == 1 and "no manifest.json" in res.output


def test_a_failed_report_leaves_the_previous_one_whole(synthetic: Path, monkeypatch: pytest.MonkeyPatch):
    res = CliRunner().invoke(app, ["stats", str(synthetic), "--tokenizer", "whitespace", "-q"])
    assert res.exit_code == 0, res.output
    assert "report/index.html (6 charts)" in " ".join(res.output.split())
    before = {p.name: p.read_bytes() for p in (synthetic / "report").iterdir()}

    def boom(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(report_module, "write_json_file", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        write_report(synthetic, tokenizer="whitespace", samples=1)
    assert {p.name: p.read_bytes() for p in (synthetic / "report").iterdir()} == before
    assert sorted(p.name for p in synthetic.iterdir() if p.name.startswith(".")) == []


def test_report_in_a_headless_browser(synthetic: Path, tmp_path: Path):
    """Chromium renders the report: no console error, every image loaded and visible, the tables
    visible. Skipped without chromium or playwright, except under CI=true, where both must be there."""
    why = None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        why = "the playwright package is not installed (pip install -e '.[dev]')"
    if why is None and not Path(CHROMIUM).is_file():
        why = f"no chromium at {CHROMIUM} (apt-get install chromium, or set MEADOW_CHROMIUM)"
    if why:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(why + "; CI=true requires it")
        pytest.skip(why)

    result = write_report(synthetic, tokenizer="whitespace")
    errors: list[str] = []
    requests: list[str] = []
    args = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ]
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=CHROMIUM,
            headless=True,
            args=args,
            viewport={"width": 1300, "height": 900},
        )
        try:
            page = context.new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("request", lambda r: requests.append(r.url))
            page.goto(result.path.as_uri(), wait_until="load")
            images = page.evaluate(
                "Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.naturalHeight])"
            )
            assert len(images) == 6
            assert all(done and w > 0 and h > 0 for done, w, h in images), images
            for img in page.locator("img").all():
                img.scroll_into_view_if_needed()
                assert img.is_visible()
                box = img.bounding_box()
                assert box and box["width"] > 100 and box["height"] > 50
            tables = page.locator("table").all()
            assert len(tables) >= 10
            assert all(t.is_visible() for t in tables)
            assert page.locator("#steps-table").is_visible()
            assert page.locator("td", has_text='<script>alert("x")</script>').first.is_visible()
            assert page.title() == "meadow stats: synthetic"
            page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        finally:
            context.close()
    assert errors == []
    assert all(u.startswith(("file:", "data:")) for u in requests), requests
    assert assert_png((tmp_path / "report.png").read_bytes())[1] > 2000


# --------------------------------------------------------------------------- charts


def test_log_ticks_fit_the_axis_and_read_short():
    assert plots.log_ticks(12, 160, 10) == [20, 50, 100]
    assert plots.log_ticks(3, 3000, 5) == [10, 100, 1000]  # 1-2-5 and 1-3 would be 9 and 7 ticks
    assert plots.log_ticks(30, 45, 5) == [30, 40]  # at least two where the range holds them
    assert plots.log_ticks(1, 1e6, 4) == [1, 100, 10_000, 1_000_000]
    assert [plots.short_number(x) for x in (5, 500, 1000, 2500, 20_000, 3e6)] == [
        "5",
        "500",
        "1k",
        "2.5k",
        "20k",
        "3M",
    ]


def _overlaps(fig) -> list[tuple[str, str]]:
    """Pairs of neighbouring x tick labels whose drawn boxes overlap, in any axes of ``fig``."""
    renderer = fig.canvas.get_renderer()
    fig.draw(renderer)
    pairs = []
    for ax in fig.axes:
        labels = [t for t in ax.get_xticklabels() if t.get_visible() and t.get_text()]
        extents = [(t.get_window_extent(renderer), t.get_text()) for t in labels]
        boxes = sorted((box.x0, box.x1, text) for box, text in extents)
        pairs += [(a[2], b[2]) for a, b in zip(boxes, boxes[1:], strict=False) if b[0] < a[1] + 2]
    return pairs


def test_length_charts_tick_labels_do_not_run_together():
    import random

    from matplotlib.backends.backend_agg import FigureCanvasAgg

    rng = random.Random(0)
    fields = ("instruction", "input", "output")
    # token lengths from a few to a few thousand: "5001,0002,000" with fixed 1-2-5 ticks
    lengths = {
        f"source_{i}": {k: [int(rng.lognormvariate(5.5, 1.2)) + 1 for _ in range(300)] for k in fields}
        for i in range(5)
    }
    for fig in (
        plots.lengths_figure(lengths, "tokens"),
        plots.total_figure([sum(v) for v in zip(*lengths["source_0"].values(), strict=True)], "tokens"),
    ):
        FigureCanvasAgg(fig)
        assert _overlaps(fig) == []
        for ax in fig.axes:
            assert len([t for t in ax.get_xticklabels() if t.get_text()]) >= 2


def test_count_charts_start_at_zero_or_on_a_log_axis_at_one():
    def funnel(source: str, read: int, kept: int) -> Funnel:
        return Funnel(source, "x", "all", read, {s.key: 0 for s in STEPS}, kept)

    # 18 of 20 kept: a linear axis from 0, so the bars are 90% as long
    (ax,) = plots.records_figure([funnel("a", 20, 18), funnel("b", 15, 15)]).axes
    assert ax.get_xscale() == "linear" and ax.get_xlim()[0] == 0
    # beside 50,000, a log axis from 1 (not from ~15, where 18 of 20 looked like a third)
    (ax,) = plots.records_figure([funnel("a", 20, 18), funnel("b", 50_000, 40_000)]).axes
    assert ax.get_xscale() == "log" and ax.get_xlim()[0] == 1
    labels = {t.get_text() for t in ax.texts}
    assert {"18", "20", "40,000", "50,000"} <= labels  # every bar says its count
    (ax,) = plots.reasons_figure([("a", "r1", "invalid", 3), ("b", "r2", "duplicates", 1)]).axes
    assert ax.get_xscale() == "linear" and ax.get_xlim()[0] == 0
