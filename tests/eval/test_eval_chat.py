"""`meadow generate`: one-shot and interactive answers on the embedded SmolLM2, in the training
template (medalpaca) or the chat template."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from meadow.cli import app
from meadow.eval.chat import ChatSession
from meadow.eval.run import LoadedModel, load_model
from meadow.train.prompt import load_template

pytestmark = pytest.mark.slow
QUESTION = "What is the main function of red blood cells?"


@pytest.fixture(scope="module")
def lm(meadow_cache: Path) -> LoadedModel:
    return load_model(None)


def test_medalpaca_prompt_is_the_training_template_and_greedy_is_deterministic(lm):
    session = ChatSession(lm, max_new_tokens=12)
    assert session.prompt(QUESTION, "context") == load_template("medalpaca").render(QUESTION, "context")
    first = session.respond(QUESTION)
    assert first == session.respond(QUESTION)
    assert "oxygen" in first  # SmolLM2: "The main function of red blood cells is to carry oxygen ..."
    assert "###" not in first


def test_chat_style_keeps_the_history(lm):
    session = ChatSession(lm, style="chat", max_new_tokens=6)
    answer = session.respond(QUESTION)
    assert session.history == [
        {"role": "user", "content": QUESTION},
        {"role": "assistant", "content": answer},
    ]
    follow_up = session.prompt("And white ones?")
    assert QUESTION in follow_up and follow_up.endswith("<|im_start|>assistant\n")


def test_cli_one_shot_and_interactive(meadow_cache):
    runner = CliRunner()
    one = runner.invoke(app, ["generate", QUESTION, "--max-new-tokens", "12"])
    assert one.exit_code == 0, one.output
    assert "oxygen" in one.output
    args = ["generate", "--prompt", "chat", "--max-new-tokens", "4"]
    chat = runner.invoke(app, args, input=f"{QUESTION}\n\n")
    assert chat.exit_code == 0, chat.output
    assert "an empty line or Ctrl-D ends" in chat.output
    bad = runner.invoke(app, ["generate", "x", "--prompt", "alpaca"])
    assert bad.exit_code == 1 and "expected medalpaca or chat" in bad.output
