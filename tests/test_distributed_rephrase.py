"""Rephrasing spread over a build's workers (meadow.convert.distributed): the same bytes and LLM
counts as a one-process build, every request paid once, the chunk caches merged into the main
cache and removed, ``--replay`` from the main cache."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import sys
import threading
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "convert"))
from fake_openai import FakeOpenAI  # noqa: E402

from meadow.build import build  # noqa: E402
from meadow.errors import MeadowError  # noqa: E402
from meadow.schemas.outputs import JSON_NAME, MANIFEST_NAME, PARQUET_NAME, SAMPLES_NAME  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
OUTPUTS = (JSON_NAME, PARQUET_NAME, "README.md", SAMPLES_NAME)


def recipe(tmp_path: Path, url: str, cache: Path, *, n: str = "all", extra: str = "") -> Path:
    p = tmp_path / f"r-{cache.stem}.yaml"
    p.write_text(
        f"name: llm_spread\nseed: 3\noutput_dir: {tmp_path / 'out'}\n"
        f"llm:\n  backend: openai\n  model: fake-model\n  base_url: {url}\n  concurrency: 2\n"
        f"  backoff_base: 0.01\n  samples: 3\n  cache: {cache}\n{extra}"
        "sources:\n"
        f"  flashcards:\n    loader: anki\n    n: {n}\n    path:\n"
        f"      - {REPO / 'examples/anki/medical_deck.apkg'}\n"
        f"      - {REPO / 'examples/anki/medical_notes.txt'}\n"
        f"  textbook:\n    loader: wikidoc\n    path: {REPO / 'examples/wikidoc/textbook.xml'}\n"
        "    options: {kind: textbook}\n"
    )
    return p


def llm_counts(out: Path) -> dict[str, object]:
    m = json.loads((out / MANIFEST_NAME).read_text())
    return {name: st["llm"] for name, st in m["sources"].items()}


def answers(cache: Path) -> set[str]:
    db = sqlite3.connect(cache)
    try:
        return {r[0] for r in db.execute("SELECT key FROM answers")}
    finally:
        db.close()


def assert_same(a: Path, b: Path) -> None:
    for name in OUTPUTS:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    assert llm_counts(a) == llm_counts(b)


@pytest.mark.parametrize("n", ["all", "7"])
def test_workers_give_the_same_build_and_counts_with_each_request_paid_once(tmp_path, n):
    cache = tmp_path / "cache.sqlite"
    with FakeOpenAI() as server:
        r = recipe(tmp_path, server.url, cache, n=n)
        one = build(r, output_dir=tmp_path / "a", progress=False)
        sent_one = dict(server.requests)
        cache.rename(tmp_path / "one.sqlite")  # the second build starts with an empty cache
        spread = build(r, output_dir=tmp_path / "b", workers=2, keep_work=True, progress=False)
        sent_two = {k: v - sent_one.get(k, 0) for k, v in server.requests.items()}
    assert sum(sent_one.values()) > 5
    assert sent_two == sent_one  # separate caches: the same requests, each once
    assert all(v == 1 for v in sent_one.values())
    assert_same(one.out_dir, spread.out_dir)
    assert answers(tmp_path / "one.sqlite") == answers(cache)
    assert len(answers(cache)) == sum(sent_one.values())
    chunks = tmp_path / "b" / ".work" / "llm_spread" / ".rephrase"
    assert chunks.is_dir() and not list(chunks.iterdir())  # chunk caches were made, merged and removed


def test_a_spread_build_shares_the_cache_and_replays(tmp_path):
    cache = tmp_path / "cache.sqlite"
    with FakeOpenAI() as server:
        r = recipe(tmp_path, server.url, cache)
        first = build(r, output_dir=tmp_path / "a", workers=2, progress=False)
        sent = server.total
        assert sent and all(v == 1 for v in server.requests.values())
        second = build(r, output_dir=tmp_path / "b", progress=False)  # one process, same cache
        assert server.total == sent  # nothing asked again
        third = build(r, output_dir=tmp_path / "c", workers=2, progress=False)
        assert server.total == sent
    assert len(answers(cache)) == sent
    assert not list(tmp_path.glob("*/.work"))
    for out in (second, third):
        for name in OUTPUTS[:3]:
            assert (first.out_dir / name).read_bytes() == (out.out_dir / name).read_bytes()
    counts = llm_counts(third.out_dir)
    assert sum(c["cache_hits"] for c in counts.values()) == sent
    assert sum(c["requests"] for c in counts.values()) == 0
    # --replay with workers: the server is down, every answer comes from the main cache
    replayed = build(r, output_dir=tmp_path / "d", workers=2, replay=True, progress=False)
    for name in OUTPUTS[:3]:
        assert (first.out_dir / name).read_bytes() == (replayed.out_dir / name).read_bytes()
    assert json.loads((replayed.out_dir / MANIFEST_NAME).read_text())["llm"]["replay"] is True
    with pytest.raises(MeadowError, match="replay"):
        build(recipe(tmp_path, "http://127.0.0.1:9/v1", tmp_path / "empty.sqlite"), workers=2, replay=True)


def test_a_budget_keeps_rephrasing_in_the_driver(tmp_path):
    cache = tmp_path / "cache.sqlite"
    with FakeOpenAI() as server:
        r = recipe(tmp_path, server.url, cache, extra="  budget_tokens: 1000000\n")
        one = build(r, output_dir=tmp_path / "a", workers=2, keep_work=True, progress=False)
        assert server.total and all(v == 1 for v in server.requests.values())
    assert len(answers(cache)) == server.total
    assert (tmp_path / "a" / ".work" / "llm_spread").is_dir()
    assert not (tmp_path / "a" / ".work" / "llm_spread" / ".rephrase").exists()
    assert one.records > 0


def _rows(cache: Path) -> int:
    try:
        return len(answers(cache))
    except sqlite3.Error:  # not yet made
        return 0


def _rephrasing_pids(work: Path) -> set[int]:
    """Processes holding a chunk cache of ``work`` open (Linux /proc)."""
    pids = set()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            for fd in (proc / "fd").iterdir():
                if str(work) in os.readlink(fd) and int(proc.name) != os.getpid():
                    pids.add(int(proc.name))
                    break
        except OSError:
            continue
    return pids


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="finds the worker through /proc")
def test_a_killed_rephrasing_worker_is_retried_and_reuses_its_chunk_cache(tmp_path):
    from fake_openai import good_answer

    hold, release = threading.Event(), threading.Event()

    def behave(body: dict, n: int) -> tuple[str, str]:
        if hold.is_set():
            release.wait(60)  # later requests wait while the test kills the workers
        return ("ok", good_answer(body))

    cache = tmp_path / "cache.sqlite"
    with FakeOpenAI(behave, delay=0.2) as server:
        r = recipe(tmp_path, server.url, cache)
        box: dict[str, object] = {}

        def run() -> None:
            try:
                box["result"] = build(r, output_dir=tmp_path / "k", workers=2, progress=False)
            except BaseException as err:  # noqa: BLE001 - re-raised in the test's thread
                box["error"] = err

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        work = tmp_path / "k" / ".work" / "llm_spread" / ".rephrase"
        deadline = time.monotonic() + 60
        # both chunks of the flashcards window answered in part, neither finished
        while len(files := list(work.glob("*.sqlite"))) < 2 or min(_rows(f) for f in files) < 1:
            assert time.monotonic() < deadline and thread.is_alive(), box
            time.sleep(0.02)
        hold.set()
        time.sleep(0.5)
        pids = _rephrasing_pids(work)
        assert len(pids) == 2
        for pid in pids:  # the workers: each chunk's task starts again, from its chunk cache
            os.kill(pid, signal.SIGKILL)
        release.set()
        thread.join(120)
        assert not thread.is_alive()
        if "error" in box:
            raise box["error"]  # type: ignore[misc]
        answered = dict(server.answered)
        twice = sum(1 for v in answered.values() if v > 1)
    result = box["result"]
    assert twice <= 4  # at most the requests in flight at the kill (2 tasks, concurrency 2)
    hits = sum(st["llm"]["cache_hits"] for st in result.manifest.to_json()["sources"].values())
    assert hits >= 2  # the retried chunks found what their killed predecessors were answered
    assert len(answers(cache)) == len(answered)
    assert not list(tmp_path.glob("*/.work"))
    with FakeOpenAI() as again:
        one = build(
            recipe(tmp_path, again.url, tmp_path / "fresh.sqlite"),
            output_dir=tmp_path / "one",
            progress=False,
        )
    rows = json.loads((result.out_dir / JSON_NAME).read_text())
    assert rows == json.loads((one.out_dir / JSON_NAME).read_text())


@pytest.fixture(scope="module")
def ray_cluster():
    """The local Ray cluster of tests/test_executors.py (its fixture's function, run here)."""
    from test_executors import ray_cluster as start

    yield from start.__wrapped__(None)


def test_ray_spreads_rephrasing_with_the_same_outcome(tmp_path, ray_cluster):
    cache = tmp_path / "cache.sqlite"
    with FakeOpenAI() as server:
        r = recipe(tmp_path, server.url, cache)
        one = build(r, output_dir=tmp_path / "a", progress=False)
        sent = dict(server.requests)
        cache.rename(tmp_path / "one.sqlite")
        on_ray = build(r, output_dir=tmp_path / "b", executor="ray", address=ray_cluster, progress=False)
        again = {k: v - sent.get(k, 0) for k, v in server.requests.items()}
    assert again == sent and all(v == 1 for v in sent.values())
    assert_same(one.out_dir, on_ray.out_dir)
    assert answers(cache) == answers(tmp_path / "one.sqlite")
    assert not list(tmp_path.glob("*/.work"))


def test_a_replay_miss_in_a_worker_fails_the_build_as_in_one_process(tmp_path):
    cache = tmp_path / "cache.sqlite"
    with FakeOpenAI() as server:
        build(
            recipe(tmp_path, server.url, cache, n="3"), output_dir=tmp_path / "a", workers=2, progress=False
        )
        r = recipe(tmp_path, server.url, cache)  # every flashcard now: some never answered
        with pytest.raises(MeadowError, match="replay: no cached answer"):
            build(r, output_dir=tmp_path / "b", workers=2, replay=True, progress=False)
        assert not (tmp_path / "b" / "llm_spread").exists()
