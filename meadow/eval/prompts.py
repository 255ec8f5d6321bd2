"""Prompts for multiple-choice questions: zero- or few-shot, in the medAlpaca template or the
model's chat template.

A question is asked as the instruction ``Answer the following multiple choice question.`` with
the input ``<question>\\nA: ...\\nB: ...`` (the framing of ``meadow.sources.mmlu``); the expected
answer, and each option scored in log-likelihood mode, is ``<letter>: <option text>``, the output
format the training data uses. Few-shot examples are earlier question/answer turns: in the
medAlpaca template, complete rendered prompts separated by a blank line; in a chat template,
user/assistant message pairs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from meadow.benchmarks import Question
from meadow.errors import MeadowError
from meadow.train.prompt import PromptTemplate, load_template

INSTRUCTION = "Answer the following multiple choice question."
Style = Literal["medalpaca", "chat"]


def question_input(q: Question) -> str:
    options = "\n".join(f"{letter}: {text}".rstrip() for letter, text in q.options.items())
    return f"{q.question}\n{options}"


def answer_text(q: Question, letter: str) -> str:
    return f"{letter}: {q.options[letter]}".rstrip()


def prompt_hash(prompt: str) -> str:
    return hashlib.sha256(prompt.encode("utf-8")).hexdigest()[:16]


@dataclass
class PromptBuilder:
    """Builds the prompt (the context every option continues) for a question."""

    style: Style = "medalpaca"
    template: PromptTemplate | None = None
    tokenizer: Any = None
    """Needed for the chat style (its ``apply_chat_template``)."""

    def __post_init__(self) -> None:
        if self.style == "medalpaca" and self.template is None:
            self.template = load_template("medalpaca")
        if self.style == "chat" and (
            self.tokenizer is None or not getattr(self.tokenizer, "chat_template", None)
        ):
            raise MeadowError("the chat prompt style needs a tokenizer with a chat template; use medalpaca")

    def build(self, q: Question, shots: Sequence[Question] = ()) -> str:
        if self.style == "medalpaca":
            assert self.template is not None
            parts = [
                self.template.render(INSTRUCTION, question_input(s), answer_text(s, s.answer)) for s in shots
            ]
            parts.append(self.template.render(INSTRUCTION, question_input(q)))
            return "\n\n".join(parts)
        return self.tokenizer.apply_chat_template(
            chat_messages(q, shots), tokenize=False, add_generation_prompt=True
        )


def chat_messages(q: Question, shots: Sequence[Question] = ()) -> list[dict[str, str]]:
    """The question (after its few-shot examples as user/assistant turns) as chat messages."""
    messages: list[dict[str, str]] = []
    for s in shots:
        messages.append({"role": "user", "content": f"{INSTRUCTION}\n\n{question_input(s)}"})
        messages.append({"role": "assistant", "content": answer_text(s, s.answer)})
    messages.append({"role": "user", "content": f"{INSTRUCTION}\n\n{question_input(q)}"})
    return messages


def pick_shots(q: Question, pool: Sequence[Question], k: int) -> list[Question]:
    """The first ``k`` questions of ``pool`` (in its order) of the same benchmark, other than ``q``,
    preferring the same MMLU subject. Deterministic."""
    if k <= 0:
        return []
    same = [p for p in pool if p.benchmark == q.benchmark and p.id != q.id]
    subject = q.meta.get("subject")
    ranked = [p for p in same if p.meta.get("subject") == subject] + [
        p for p in same if p.meta.get("subject") != subject
    ]
    return ranked[:k]
