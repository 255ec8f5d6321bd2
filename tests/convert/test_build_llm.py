"""`meadow build` with sources that need rephrasing, against a local OpenAI-compatible server."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fake_openai import FakeOpenAI, last_user

from meadow.build import build
from meadow.build.sample import rank
from meadow.errors import MeadowError
from meadow.schemas.outputs import JSON_NAME, MANIFEST_NAME, PARQUET_NAME, SAMPLES_NAME

REPO = Path(__file__).resolve().parents[2]


def write_recipe(tmp_path: Path, url: str, sources: str, *, extra: str = "", name: str = "r.yaml") -> Path:
    p = tmp_path / name
    p.write_text(
        f"name: llm_build\nseed: 3\noutput_dir: {tmp_path / 'out'}\n"
        f"llm:\n  backend: openai\n  model: fake-model\n  base_url: {url}\n  concurrency: 2\n"
        f"  backoff_base: 0.01\n  cache: {tmp_path / 'cache.sqlite'}\n{extra}"
        f"sources:\n{sources}"
    )
    return p


EXAMPLE_SOURCES = f"""  cards:
    loader: anki
    path: {REPO / "examples/anki/medical_deck.apkg"}
  textbook:
    loader: wikidoc
    path: {REPO / "examples/wikidoc/textbook.xml"}
    options: {{kind: textbook}}
  cord19:
    loader: cord19
    path: {REPO / "examples/cord19/metadata.csv"}
"""


def test_build_rephrases_flashcards_and_textbook_sections(tmp_path):
    with FakeOpenAI() as server:
        result = build(write_recipe(tmp_path, server.url, EXAMPLE_SOURCES), progress=False)
        asked = server.total
    m = result.manifest.to_json()
    cards, textbook = m["sources"]["cards"], m["sources"]["textbook"]
    assert cards["llm"]["passages"] == 9 and cards["llm"]["accepted"] == 9 and cards["sampled"] == 9
    assert textbook["llm"]["accepted"] == textbook["sampled"] == 6
    assert asked == 15 and cards["llm"]["requests"] + textbook["llm"]["requests"] == 15
    assert cards["read"] == cards["dropped_total"] + cards["duplicates"] + cards["unique"]
    assert m["llm"]["backend"] == "openai:fake-model"
    rows = json.loads((result.out_dir / JSON_NAME).read_text())
    card_rows = [r for r in rows if r["source"] == "anki/medical_deck"]
    assert len(card_rows) == 9 and all(r["input"].endswith("?") for r in card_rows)
    samples = json.loads((result.out_dir / SAMPLES_NAME).read_text())
    assert len(samples["cards"]["accepted"]) == 9 and samples["cards"]["rejected"] == []
    assert m["outputs"][SAMPLES_NAME]["sha256"]


def test_subsampled_passages_cost_about_n_answers_and_keep_the_lowest_ranks(tmp_path):
    sources = f"  cards:\n    loader: anki\n    path: {REPO / 'examples/anki/medical_deck.apkg'}\n    n: 3\n"
    with FakeOpenAI() as server:
        result = build(write_recipe(tmp_path, server.url, sources), progress=False)
        asked = server.total
    rows = json.loads((result.out_dir / JSON_NAME).read_text())
    assert len(rows) == 3
    assert asked == 3  # the window is max(room, concurrency) = 3: nothing rephrased in vain
    st = result.manifest.to_json()["sources"]["cards"]
    assert st["llm"]["not_rephrased"] == 6
    ids = [f"anki/medical_deck:mdx-{i:04d}" for i in range(1, 12)]
    candidates = {r["id"] for r in rows}
    ranked = sorted((rank(3, i), i) for i in ids if i in candidates)
    assert sorted(i for _, i in ranked) == sorted(candidates)


def test_failed_rephrasing_is_counted_and_replaced_by_the_next_ranked_passage(tmp_path):
    sources = f"  cards:\n    loader: anki\n    path: {REPO / 'examples/anki/medical_deck.apkg'}\n    n: 4\n"

    def behave(body, n):
        if "hypertension" in last_user(body):
            return ("ok", "Sorry, I can't.")
        from fake_openai import good_answer

        return ("ok", good_answer(body))

    with FakeOpenAI(behave) as server:
        result = build(
            write_recipe(tmp_path, server.url, sources, extra="  invalid_retries: 1\n"), progress=False
        )
    st = result.manifest.to_json()["sources"]["cards"]
    assert st["sampled"] == 4
    assert st["dropped"].get("rephrase_unparseable", 0) == st["llm"]["failed"].get("rephrase_unparseable", 0)


def test_replay_rebuilds_byte_identically_with_the_server_down(tmp_path):
    with FakeOpenAI() as server:
        recipe = write_recipe(tmp_path, server.url, EXAMPLE_SOURCES)
        first = build(recipe, output_dir=tmp_path / "a", progress=False).out_dir
    again = build(recipe, output_dir=tmp_path / "b", replay=True, progress=False).out_dir
    for name in (JSON_NAME, PARQUET_NAME, "README.md", SAMPLES_NAME):
        assert (first / name).read_bytes() == (again / name).read_bytes(), name
    (tmp_path / "cache.sqlite").unlink()
    for suffix in ("-wal", "-shm"):
        Path(f"{tmp_path / 'cache.sqlite'}{suffix}").unlink(missing_ok=True)
    with pytest.raises(MeadowError, match="replay needs an existing LLM cache"):
        build(recipe, output_dir=tmp_path / "c", replay=True, progress=False)


def test_killed_build_resumes_without_asking_any_finished_request_again(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text(
        "#separator:tab\n#html:false\n"
        + "".join(f"Which nerve supplies muscle number {i}?\tNerve number {i}\n" for i in range(40))
    )
    sources = f"  cards:\n    loader: anki\n    path: {notes}\n"
    with FakeOpenAI(delay=0.05) as server:
        recipe = write_recipe(tmp_path, server.url, sources)
        cmd = [sys.executable, "-m", "meadow.cli", "build", str(recipe), "--quiet"]
        proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while sum(server.answered.values()) < 12 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.01)
        assert proc.poll() is None, proc.stderr.read().decode()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        db = sqlite3.connect(tmp_path / "cache.sqlite")
        cached = {
            json.loads(r[0])["messages"][-1]["content"] for r in db.execute("SELECT request FROM answers")
        }
        db.close()
        assert 10 <= len(cached) < 40  # 12 answered, at most 2 (the concurrency) lost in flight
        assert not (tmp_path / "out" / "llm_build").exists()  # nothing half-written

        done = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        per_prompt: dict[str, int] = {}
        for body in server.bodies:
            content = last_user(body)
            per_prompt[content] = per_prompt.get(content, 0) + 1
    assert all(per_prompt[c] == 1 for c in cached)  # finished requests were never asked again
    assert sum(1 for c in per_prompt.values() if c > 1) <= 2  # at most the ones in flight at the kill
    assert len(per_prompt) == 40
    manifest = json.loads((tmp_path / "out" / "llm_build" / MANIFEST_NAME).read_text())
    assert manifest["sources"]["cards"]["llm"]["cache_hits"] >= 10
    assert manifest["sources"]["cards"]["sampled"] == 40


def test_meadow_convert_command_writes_records_and_a_build_reuses_them(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from meadow.cli import app

    monkeypatch.chdir(tmp_path)
    with FakeOpenAI() as server:
        recipe = write_recipe(tmp_path, server.url, EXAMPLE_SOURCES)
        out = tmp_path / "rephrased.jsonl"
        res = CliRunner().invoke(app, ["convert", str(recipe), "-s", "cards", "-o", str(out)])
        assert res.exit_code == 0, res.output
        assert "wrote 9 records" in res.output
        rows = [json.loads(line) for line in out.read_text().splitlines()]
        assert len(rows) == 9 and rows[0]["instruction"] == "Answer this question truthfully"
        assert server.total == 9
        result = build(recipe, progress=False)
        assert result.manifest.to_json()["sources"]["cards"]["llm"]["cache_hits"] == 9
        assert server.total == 9 + 6  # only the textbook was asked now
        res = CliRunner().invoke(app, ["convert", str(recipe), "-s", "nope"])
        assert res.exit_code == 1 and "no source named nope" in res.output


def test_quality_filters_apply_to_rephrased_records(tmp_path):
    """Rephrased records go through the same checks as loaded ones, before the sample."""
    from fake_openai import good_answer

    tagged: set[str] = set()

    def behave(body: dict, n: int) -> tuple[str, str]:
        answer = json.loads(good_answer(body))
        if len(answer["question"]) % 2 == 0:  # a leftover of HTML for some cards, whatever the order
            answer["answer"] += " <br/>"
            tagged.add(answer["question"])
        return ("ok", json.dumps(answer))

    sources = (
        f"  cards:\n    loader: anki\n    path: {REPO / 'examples/anki/medical_deck.apkg'}\n"
        "    filters: {boilerplate: true}\n"
    )
    with FakeOpenAI(behave) as server:
        # no grounding check: it would drop the answers with a stray "<br/>" before the filter
        recipe = write_recipe(tmp_path, server.url, sources, extra="  min_support: null\n")
        result = build(recipe, progress=False)
    cards = result.manifest.to_json()["sources"]["cards"]
    assert 0 < len(tagged) < 9
    assert cards["dropped"]["filter_boilerplate"] == len(tagged)
    assert cards["sampled"] == cards["llm"]["accepted"] - len(tagged)
    assert cards["read"] == cards["dropped_total"] + cards["duplicates"] + cards["unique"]
    rows = json.loads((result.out_dir / JSON_NAME).read_text())
    assert rows and not any("<br/>" in r["output"] for r in rows)


def test_unsupported_answers_and_judge_rejections_reach_the_manifest_samples_and_stats(tmp_path):
    """Grounding drops are counted like other drops: manifest reasons, dropped_samples.json,
    rephrase_samples.json and the `meadow stats` report; a judged rebuild asks nothing again."""
    from fake_openai import good_answer

    from meadow.schemas.outputs import DROPPED_NAME
    from meadow.stats.report import write_report

    def behave(body: dict, n: int) -> tuple[str, str]:
        user = last_user(body)
        if "Source text:" in user:  # the judge: rejects the card about peaked T waves
            return ("ok", json.dumps({"verdict": "unsupported" if "T waves" in user else "supported"}))
        answer = json.loads(good_answer(body))
        if "Cushing" in user or "wrist drop" in user:  # invents a drug
            answer["answer"] = "Spironolactone, 25 mg."
        return ("ok", json.dumps(answer))

    sources = f"  cards:\n    loader: anki\n    path: {REPO / 'examples/anki/medical_deck.apkg'}\n"
    extra = "  invalid_retries: 0\n  judge: true\n"
    with FakeOpenAI(behave) as server:
        recipe = write_recipe(tmp_path, server.url, sources, extra=extra)
        result = build(recipe, progress=False)
        asked = server.total
        # rephrased on two workers this time (meadow.convert.distributed): the same drops
        again = build(recipe, output_dir=tmp_path / "again", workers=2, progress=False)
        assert server.total == asked  # every rephrasing and every verdict came from the cache
    st = result.manifest.to_json()["sources"]["cards"]
    unsupported = st["dropped"]["unsupported_answer"]
    assert unsupported >= 1 and st["dropped"]["judge_rejected"] == 1
    assert st["llm"]["failed"] == {"judge_rejected": 1, "unsupported_answer": unsupported}
    assert st["llm"]["judged"] == {"supported": 9 - unsupported - 1, "unsupported": 1}
    assert asked == 9 + 9 - unsupported  # a pair the support check drops is never judged
    assert st["read"] == st["dropped_total"] + st["duplicates"] + st["unique"]
    assert st["sampled"] == 9 - unsupported - 1
    assert "spironolacton" in st["drop_examples"]["unsupported_answer"][0]
    assert again.manifest.to_json()["sources"]["cards"]["dropped"] == st["dropped"]
    for name in (JSON_NAME, DROPPED_NAME, SAMPLES_NAME):
        assert (again.out_dir / name).read_bytes() == (result.out_dir / name).read_bytes(), name

    dropped = json.loads((result.out_dir / DROPPED_NAME).read_text())["cards"]
    row = dropped["unsupported_answer"][0]
    assert row["output"] == "Spironolactone, 25 mg." and row["input"].endswith("?")
    assert "number 25 not in the passage" in row["detail"]
    assert dropped["judge_rejected"][0]["detail"].startswith("grounding_judge@v1")
    samples = json.loads((result.out_dir / SAMPLES_NAME).read_text())["cards"]
    reasons = {e["reason"] for e in samples["rejected"]}
    assert reasons == {"unsupported_answer", "judge_rejected"}
    assert all("support" in e for e in samples["accepted"])

    report = write_report(result.out_dir, tokenizer="whitespace")
    page = report.path.read_text(encoding="utf-8")
    assert "unsupported_answer" in page and "judge_rejected" in page and "Spironolactone" in page
