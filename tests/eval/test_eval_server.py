"""`meadow eval --mode generate --base-url`: an OpenAI-compatible server answers, the letter is
read from each answer (tests/convert/fake_openai.py plays the server)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from typer.testing import CliRunner

from meadow.cli import app

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "convert"))
from fake_openai import FakeOpenAI, last_user  # noqa: E402

ANSWERS = {
    "hyoid": "The answer is (D).",
    "trigeminal": "B. The infraorbital nerve",
    "pleura": "I am not sure.",
}


def behave(body: dict, n: int) -> tuple:
    text = last_user(body)
    for key, answer in ANSWERS.items():
        if key in text:
            return ("ok", answer)
    return ("ok", "C")


def test_server_generation(raw_fixtures, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_KEY", "sk-test")
    spec = f"mmlu:{raw_fixtures}/mmlu/dev/anatomy_dev.csv"
    with FakeOpenAI(behave) as server:
        args = ["eval", "-b", spec, "--mode", "generate", "--base-url", server.url, "--model", "fake-model"]
        args += ["--api-key-env", "FAKE_KEY", "--limit", "3", "--prompt", "chat", "-o", str(tmp_path), "-q"]
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        bodies = server.bodies
    assert len(bodies) == 3
    assert all(b["temperature"] == 0 and b["model"] == "fake-model" and b["seed"] == 0 for b in bodies)
    assert bodies[0]["messages"][-1]["content"].startswith("Answer the following multiple choice question.")
    rows = [json.loads(line) for line in (tmp_path / "questions.jsonl").read_text().splitlines()]
    assert [(r["generation"], r["choice"], r["correct"]) for r in rows] == [
        ("The answer is (D).", "D", True),  # answer D
        ("B. The infraorbital nerve", "B", False),  # answer D
        ("I am not sure.", None, False),  # answer C
    ]
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["model"]["identity"] == f"fake-model@{server.url}"
    assert results["benchmarks"]["mmlu"]["acc"]["correct"] == 1
    assert results["benchmarks"]["mmlu"]["no_answer"] == 1
    assert "| fake-model (generate, 0-shot, chat) | 33.3 (6.1-79.2), n=3 |" in result.output


def test_server_needs_generate_mode(tmp_path):
    args = ["eval", "-b", "mmlu:x.csv", "--base-url", "http://127.0.0.1:9/v1", "--model", "m"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1
    assert "needs --mode generate" in result.output
