"""The rephrasing runner against a local OpenAI-compatible server, through the real `openai` client."""

from __future__ import annotations

import json
import sqlite3
import time

import pytest
from fake_openai import FakeOpenAI, good_answer

from meadow.convert.prompts import INSTRUCTION, PREFILL, TASKS, parse_answer, validate
from meadow.convert.runner import BudgetExceeded, SyncRephraser
from meadow.errors import MeadowError
from meadow.records import Passage, Record
from meadow.schemas.llm import LLMSettings
from meadow.sources import Drop


def cards(n: int) -> list[Passage]:
    return [
        Passage(
            text=f"Front: Drug of choice for condition {i}\nBack: Medicine {i}",
            source="anki/test",
            id=f"anki/test:{i}",
            task="flashcard",
        )
        for i in range(n)
    ]


def settings(server: FakeOpenAI, tmp_path, **kw) -> LLMSettings:
    base = dict(
        backend="openai",
        model="fake-model",
        base_url=server.url,
        concurrency=4,
        timeout=2.0,
        backoff_base=0.01,
        backoff_max=0.05,
        max_retries=3,
        cache=str(tmp_path / "cache.sqlite"),
    )
    return LLMSettings(**{**base, **kw})


def run(server: FakeOpenAI, tmp_path, passages, **kw):
    s = settings(server, tmp_path, **kw)
    with SyncRephraser(s, s.cache) as r:
        results = r.convert(passages)
        return results, r.stats


def test_good_answers_become_records_and_a_rerun_is_all_cache_hits(tmp_path):
    passages = cards(6) + [
        Passage(
            text="Hyperkalemia - Diagnosis\n\nPotassium above 5.5 mmol/L is hyperkalemia. " * 3,
            source="wikidoc/textbook",
            id="wikidoc/textbook:1#Diagnosis",
            task="wikidoc_textbook",
        )
    ]
    with FakeOpenAI() as server:
        results, stats = run(server, tmp_path, passages)
        assert all(isinstance(r, Record) for r in results)
        first = results[0]
        assert first.instruction == INSTRUCTION
        assert first.input == "What should you know about this: Drug of choice for condition 0?"
        assert first.output == "Medicine 0."
        assert first.id == "anki/test:0" and first.source == "anki/test"
        assert first.meta["rephrased_by"] == "openai:fake-model" and first.meta["prompt"] == "flashcard@v2"
        textbook = results[-1]
        assert textbook.input == "What is the Hyperkalemia - Diagnosis?"
        assert textbook.output.startswith("Potassium above 5.5")  # the section text is the answer
        assert stats.requests == 7 and stats.cache_hits == 0 and stats.accepted == 7
        assert stats.prompt_tokens == 7 * 50 and stats.completion_tokens == 7 * 20
        assert server.total == 7
        again, stats2 = run(server, tmp_path, passages)
        assert again == results
        assert stats2.cache_hits == 7 and stats2.requests == 0 and server.total == 7


def test_the_real_openai_client_sends_the_chat_request(tmp_path):
    with FakeOpenAI() as server:
        run(server, tmp_path, cards(1), prefill_as_assistant=True, structured_output="json_schema", seed=5)
        body = server.bodies[0]
    assert body["model"] == "fake-model" and body["temperature"] == 0.0 and body["seed"] == 5
    assert [m["role"] for m in body["messages"]] == ["system", "user", "assistant", "user", "assistant"]
    assert body["messages"][-1]["content"] == PREFILL
    assert "Cushing syndrome" in body["messages"][1]["content"]  # the worked example
    assert body["response_format"]["type"] == "json_schema"
    assert "Front: Drug of choice for condition 0" in body["messages"][3]["content"]


def test_garbage_is_re_asked_then_dropped_with_its_reason(tmp_path):
    with FakeOpenAI(lambda body, n: ("ok", "I cannot help with that.")) as server:
        results, stats = run(server, tmp_path, cards(2), invalid_retries=2)
        assert all(isinstance(r, Drop) and r.reason == "rephrase_unparseable" for r in results)
        assert server.total == 2 * 3  # each re-ask is a new request (attempt and temperature change)
        temps = sorted({b["temperature"] for b in server.bodies})
        assert temps == [0.0, 0.7]
    assert stats.failed == {"rephrase_unparseable": 2}
    assert len(stats.rejected_samples) == 6 and stats.rejected_samples[0]["reason"] == "unparseable"


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ('{"question": "What is it", "answer": "x"}', "not_a_question"),
        ('{"question": "", "answer": "x"}', "empty_question"),
        ('{"question": "What is the answer here?", "answer": ""}', "empty_answer"),
        (
            '{"question": "What is the answer here?", "answer": "What is the answer here?"}',
            "answer_copies_question",
        ),
        ('{"question": "Why?", "answer": "x"}', "question_too_short"),
        (
            '{"question": "What is the most common cause of Cushing syndrome?", "answer": "x"}',
            "copies_example",
        ),
    ],
)
def test_invalid_answers_are_named(answer, reason):
    task = TASKS["flashcard"]
    passage = cards(1)[0]
    fields, why = validate(task, passage, parse_answer(answer, task.fields))
    assert fields is None and why == reason


def test_a_copy_of_the_card_is_not_an_answer():
    task = TASKS["flashcard"]
    p = cards(1)[0]
    answer = json.dumps({"question": "What is the drug of choice for condition 0?", "answer": p.text})
    assert validate(task, p, parse_answer(answer, task.fields)) == (None, "answer_copies_prompt")


def test_truncated_answers_are_dropped(tmp_path):
    with FakeOpenAI(lambda body, n: ("ok", '{"question": "What is', "length")) as server:
        results, _ = run(server, tmp_path, cards(1), invalid_retries=0)
    assert results[0].reason == "rephrase_truncated"


def test_429_with_retry_after_is_honoured(tmp_path):
    def behave(body, n):
        return ("status", 429, {"Retry-After": "0.3"}) if n <= 2 else ("ok", good_answer(body))

    with FakeOpenAI(behave) as server:
        t0 = time.perf_counter()
        results, stats = run(server, tmp_path, cards(1))
        elapsed = time.perf_counter() - t0
    assert isinstance(results[0], Record)
    assert stats.retries == 2 and stats.requests == 3
    assert elapsed >= 0.6  # waited as the server asked, twice


def test_500_is_retried_then_dropped(tmp_path):
    with FakeOpenAI(lambda body, n: ("status", 500)) as server:
        results, stats = run(server, tmp_path, cards(1), max_retries=3)
        assert server.total == 4
    assert results[0].reason == "request_http_500"
    assert "after 4 attempts" in results[0].detail


def test_hang_times_out_and_is_retried(tmp_path):
    def behave(body, n):
        return ("hang", 2.0) if n == 1 else ("ok", good_answer(body))

    with FakeOpenAI(behave) as server:
        results, stats = run(server, tmp_path, cards(1), timeout=0.3)
    assert isinstance(results[0], Record) and stats.retries == 1


def test_dropped_connection_is_retried(tmp_path):
    def behave(body, n):
        return ("drop",) if n == 1 else ("ok", good_answer(body))

    with FakeOpenAI(behave) as server:
        results, stats = run(server, tmp_path, cards(1))
    assert isinstance(results[0], Record) and stats.retries == 1


@pytest.mark.parametrize("status", [401, 404])
def test_auth_and_missing_model_stop_the_run(tmp_path, status):
    with (
        FakeOpenAI(lambda body, n: ("status", status)) as server,
        pytest.raises(MeadowError, match=f"HTTP {status}"),
    ):
        run(server, tmp_path, cards(3))


def test_budget_stops_cleanly_and_a_larger_budget_continues_without_paying_twice(tmp_path):
    passages = cards(10)
    with FakeOpenAI() as server:
        with pytest.raises(BudgetExceeded, match="token budget spent"):
            run(server, tmp_path, passages, budget_tokens=250, concurrency=1)  # 70 tokens an answer
        paid = server.total
        assert paid == 4  # 0, 70, 140, 210 < 250: four requests, then the fifth is refused
        db = sqlite3.connect(tmp_path / "cache.sqlite")
        assert db.execute("SELECT COUNT(*) FROM answers").fetchone()[0] == 4
        results, stats = run(server, tmp_path, passages, budget_tokens=10_000)
        assert stats.cache_hits == 4 and stats.requests == 6
        assert max(server.requests.values()) == 1  # no request was ever sent twice
        assert all(isinstance(r, Record) for r in results)


def test_dollar_budget(tmp_path):
    with FakeOpenAI() as server, pytest.raises(BudgetExceeded, match="dollar budget spent"):
        run(
            server,
            tmp_path,
            cards(5),
            concurrency=1,
            budget_usd=0.0001,
            price_input_per_1m=1.0,
            price_output_per_1m=2.0,
        )  # 0.00009 an answer


def test_replay_reproduces_without_a_server_and_a_miss_is_an_error(tmp_path):
    with FakeOpenAI() as server:
        results, _ = run(server, tmp_path, cards(3))
        url = server.url
    # the server is gone: replay answers from the cache alone
    s = LLMSettings(
        backend="openai", model="fake-model", base_url=url, replay=True, cache=str(tmp_path / "cache.sqlite")
    )
    with SyncRephraser(s, s.cache) as r:
        assert r.convert(cards(3)) == results
        with pytest.raises(MeadowError, match="replay: no cached answer"):
            r.convert(cards(4))


def test_missing_api_key_for_openai_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    s = LLMSettings(backend="openai", model="gpt-3.5-turbo", cache=str(tmp_path / "c.sqlite"))
    with pytest.raises(MeadowError, match="set the environment variable OPENAI_API_KEY"):
        SyncRephraser(s, s.cache)


def test_the_key_never_reaches_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MY_KEY", "sk-secret-123")
    with FakeOpenAI() as server:
        run(server, tmp_path, cards(2), api_key_env="MY_KEY")
    assert b"sk-secret-123" not in (tmp_path / "cache.sqlite").read_bytes()
