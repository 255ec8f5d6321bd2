"""The in-process backends on the embedded SmolLM2: batching, prefill, determinism, closing."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import time
from pathlib import Path

import pytest

from meadow.convert.backend import BackendError, Completion, GenParams
from meadow.convert.local import LlamaCppBackend, LocalBackend
from meadow.models import default_gguf

PREFILL = '{"question": "'
SYSTEM = (
    "You write training data for a medical question answering assistant. "
    "Reply with one JSON object and nothing else."
)


@pytest.fixture(scope="module")
def backend(meadow_cache: Path):
    backend = LocalBackend(batch_size=4, max_wait_ms=20)
    yield backend
    asyncio.run(backend.aclose())


@pytest.fixture(scope="module")
def llama(meadow_cache: Path):
    pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed (pip install 'meadow[llama]')")
    backend = LlamaCppBackend(n_ctx=1024)
    yield backend
    asyncio.run(backend.aclose())


def flashcard(front: str, back: str) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": SYSTEM},
        {
            "role": "user",
            "content": "Rephrase this flashcard into a question and its answer, as a JSON object with the "
            f'keys "question" and "answer".\n\nFront: {front}\nBack: {back}',
        },
    ]


SCURVY = flashcard("Which vitamin deficiency causes scurvy?", "Vitamin C")
CARDS = [
    SCURVY,
    flashcard("Which nerve is injured in wrist drop?", "The radial nerve"),
    flashcard("What is the antidote for acetaminophen overdose?", "N-acetylcysteine"),
    flashcard("Which organism causes Lyme disease?", "Borrelia burgdorferi"),
    flashcard("What enzyme is deficient in phenylketonuria?", "Phenylalanine hydroxylase"),
    flashcard("What is the first-line treatment for anaphylaxis?", "Intramuscular epinephrine"),
]


def extract_question(text: str) -> str | None:
    """The question of a JSON answer, closing a brace the token limit cut off; else a regex."""
    for tail in ("", "}", '"}'):
        try:
            value = json.loads(text + tail)
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict) and isinstance(value.get("question"), str):
            return value["question"]
    match = re.match(r'\{\s*"question"\s*:\s*"((?:[^"\\]|\\.)*)"', text)
    return json.loads(f'"{match.group(1)}"') if match else None


def run(*requests):
    async def gather():
        return await asyncio.gather(*requests)

    return asyncio.run(gather())


# --- LocalBackend (transformers) ---------------------------------------------------------------


@pytest.mark.slow
def test_identity_names_the_model_and_the_weights_hash(backend: LocalBackend):
    digest = hashlib.sha256(default_gguf().read_bytes()).hexdigest()
    assert backend.identity == f"local:SmolLM2-135M-Instruct@{digest[:12]}"


@pytest.mark.slow
def test_prefill_makes_smollm2_answer_in_json(backend: LocalBackend):
    json_answer, free_answer = run(
        backend.complete(SCURVY, GenParams(max_tokens=48, prefill=PREFILL)),
        backend.complete(SCURVY, GenParams(max_tokens=48)),
    )
    assert json_answer.text.startswith(PREFILL)
    question = extract_question(json_answer.text)
    assert question and "scurvy" in question.lower()
    assert json_answer.prompt_tokens > 0 and 0 < json_answer.completion_tokens <= 48
    # asked the same thing without the prefill, the model does not write JSON
    assert not free_answer.text.lstrip().startswith("{")
    assert extract_question(free_answer.text) is None


@pytest.mark.slow
def test_concurrent_requests_are_batched_and_answer_as_alone(backend: LocalBackend):
    params = GenParams(max_tokens=10, prefill=PREFILL)
    sizes = len(backend.stats.sizes)
    together = run(*(backend.complete(m, params) for m in CARDS))
    assert backend.stats.sizes[sizes:] == [4, 2]  # batch_size=4
    assert [c.extra["batch_size"] for c in together] == [4, 4, 4, 4, 2, 2]
    assert all(c.text.startswith(PREFILL) for c in together)
    alone = [run(backend.complete(m, params))[0] for m in (CARDS[0], CARDS[5])]
    assert [c.text for c in alone] == [together[0].text, together[5].text]


@pytest.mark.slow
def test_each_request_keeps_its_own_limit_and_finish_reason(backend: LocalBackend):
    short, full = run(
        backend.complete(SCURVY, GenParams(max_tokens=3, prefill=PREFILL)),
        backend.complete(SCURVY, GenParams(max_tokens=64, prefill=PREFILL)),
    )
    assert (short.finish_reason, short.completion_tokens) == ("length", 3)
    assert full.finish_reason == "stop"
    assert full.text.startswith(short.text)
    assert short.extra["batch_size"] == 2


@pytest.mark.slow
def test_sampling_is_seeded_per_request(backend: LocalBackend):
    hot = GenParams(max_tokens=16, temperature=1.0, seed=7)
    (alone,) = run(backend.complete(SCURVY, hot))
    first, greedy, retry = run(
        backend.complete(SCURVY, hot),
        backend.complete(CARDS[1], GenParams(max_tokens=16)),
        backend.complete(SCURVY, hot.model_copy(update={"attempt": 1})),
    )
    assert first.text == alone.text  # same seed + attempt: same answer, whatever the batch
    assert retry.text != first.text  # a retry samples anew
    assert greedy.finish_reason in ("stop", "length")


@pytest.mark.slow
def test_generation_never_blocks_the_event_loop(backend: LocalBackend):
    async def main() -> tuple[int, Completion]:
        ticks = 0
        task = asyncio.ensure_future(backend.complete(SCURVY, GenParams(max_tokens=24)))
        while not task.done():
            await asyncio.sleep(0.005)
            ticks += 1
        return ticks, await task

    ticks, answer = asyncio.run(main())
    assert answer.completion_tokens > 0
    assert ticks >= 10


@pytest.mark.slow
def test_a_prompt_beyond_the_context_fails_alone(backend: LocalBackend):
    async def main():
        return await asyncio.gather(
            backend.complete(SCURVY, GenParams(max_tokens=9000)),
            backend.complete(SCURVY, GenParams(max_tokens=4)),
            return_exceptions=True,
        )

    too_long, fine = asyncio.run(main())
    assert isinstance(too_long, BackendError) and not too_long.retryable
    assert "context of 8192 tokens" in str(too_long)
    assert isinstance(fine, Completion)


@pytest.mark.slow
def test_aclose_stops_generation_and_frees_the_model(meadow_cache: Path):
    async def main() -> tuple[BaseException | Completion, float]:
        backend = LocalBackend()
        essay = [{"role": "user", "content": "Write a long essay on the history of medicine."}]
        task = asyncio.ensure_future(backend.complete(essay, GenParams(max_tokens=2000)))
        while backend._inflight is None:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)
        started = time.perf_counter()
        await backend.aclose()
        closing = time.perf_counter() - started
        result = (await asyncio.gather(task, return_exceptions=True))[0]
        assert backend._model is None and backend._tokenizer is None
        with pytest.raises(BackendError, match="closed"):
            await backend.complete(SCURVY, GenParams())
        return result, closing

    result, closing = asyncio.run(main())
    assert isinstance(result, BackendError) and "closed" in str(result)
    assert closing < 5  # 2000 tokens would take minutes: it stopped at the next token


# --- LlamaCppBackend ---------------------------------------------------------------------------


@pytest.mark.slow
def test_llama_cpp_answers_in_json_with_the_prefill(llama: LlamaCppBackend):
    digest = hashlib.sha256(default_gguf().read_bytes()).hexdigest()
    assert llama.identity == f"llama_cpp:SmolLM2-135M-Instruct@{digest[:12]}"
    first, second = run(
        llama.complete(SCURVY, GenParams(max_tokens=48, prefill=PREFILL)),
        llama.complete(SCURVY, GenParams(max_tokens=48, prefill=PREFILL)),
    )
    assert first == second
    assert first.text.startswith(PREFILL)
    question = extract_question(first.text)
    assert question and "scurvy" in question.lower()
    (short,) = run(llama.complete(SCURVY, GenParams(max_tokens=3, prefill=PREFILL)))
    assert (short.finish_reason, short.completion_tokens) == ("length", 3)


@pytest.mark.slow
def test_llama_cpp_renders_the_chat_template_as_transformers_does(llama: LlamaCppBackend, meadow_cache: Path):
    from meadow.models import resolve_model

    tokenizer = resolve_model().load_tokenizer()
    expected = tokenizer.apply_chat_template(SCURVY, tokenize=False, add_generation_prompt=True)
    assert llama._format(messages=SCURVY).prompt == expected
