"""Rephrasing tasks: the versioned prompts, how answers are parsed, and what a valid answer is.

Each task (``Passage.task``) has a prompt version; the version, the messages and the
generation parameters all enter the cache key, so changing a prompt never reuses answers
given to the old one.

Answers are asked for as JSON. Small local models need help: they answer in JSON when the
answer is pre-filled with ``{"question": "``, and otherwise tend to write
``Question: ...\\n\\nAnswer: ...``, which the fallback parser accepts.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from meadow.convert.backend import Message
from meadow.records import Passage

INSTRUCTION = "Answer this question truthfully"
"""The instruction of rephrased records, as in medAlpaca's flashcards and WikiDoc datasets."""

PREFILL = '{"question": "'

_SYSTEM = (
    "You write training data for a medical question answering assistant. "
    "Reply with one JSON object and nothing else."
)


@dataclass(frozen=True)
class Task:
    name: str
    version: str
    user: str  # template with {text}
    fields: tuple[str, ...]  # what the model must return
    example: tuple[str, str]  # one worked example: (passage text, JSON answer)

    def messages(self, passage: Passage) -> list[Message]:
        """System prompt, one worked example (small models need it), then the passage."""
        return [
            {"role": "system", "content": _SYSTEM},
            {"role": "user", "content": self.user.format(text=self._text(self.example[0]))},
            {"role": "assistant", "content": self.example[1]},
            {"role": "user", "content": self.user.format(text=self._text(passage.text))},
        ]

    def _text(self, text: str) -> str:
        if self.name == "wikidoc_textbook":
            heading, body = split_section(text)
            return f"Heading: {heading}\n\nSection:\n{body}"
        return text

    def json_schema(self) -> dict[str, Any]:
        return {
            "name": f"{self.name}_{self.version}",
            "schema": {
                "type": "object",
                "properties": {f: {"type": "string"} for f in self.fields},
                "required": list(self.fields),
                "additionalProperties": False,
            },
        }


TASKS: dict[str, Task] = {
    "flashcard": Task(
        name="flashcard",
        version="v2",  # v2: the worked example adds nothing to its card (v1 added "steroid medication")
        user=(
            "Rephrase this medical flashcard into a question and its answer. The question must be "
            "clear and complete on its own and end with a question mark; the answer must state the "
            "facts of the card in full sentences, adding nothing that is not on the card.\n\n"
            "{text}\n\n"
            'Reply as JSON: {{"question": "...", "answer": "..."}}'
        ),
        fields=("question", "answer"),
        example=(
            "Front: Most common cause of Cushing syndrome?\nBack: Exogenous glucocorticoids",
            '{"question": "What is the most common cause of Cushing syndrome?", '
            '"answer": "The most common cause of Cushing syndrome is the use of exogenous '
            'glucocorticoids."}',
        ),
    ),
    "wikidoc_textbook": Task(
        name="wikidoc_textbook",
        version="v1",
        user=(
            "Below is a section of a medical textbook: its heading, then its text. Rephrase the "
            "heading into the question that the section text answers, as a student or clinician "
            "would ask it. The question must be complete on its own (name the disease or topic) and "
            "end with a question mark.\n\n"
            "{text}\n\n"
            'Reply as JSON: {{"question": "..."}}'
        ),
        fields=("question",),
        example=(
            "Asthma - Treatment - Acute exacerbation\n\nAn acute asthma attack is treated with inhaled "
            "short-acting beta-2 agonists such as salbutamol, systemic corticosteroids and oxygen.",
            '{"question": "How is an acute asthma attack treated?"}',
        ),
    ),
}


def split_section(text: str) -> tuple[str, str]:
    """A WikiDoc textbook passage: 'Title - Heading - Sub\\n\\nsection text' -> (heading path, text)."""
    heading, _, body = text.partition("\n\n")
    return heading.strip(), body.strip()


# ------------------------------------------------------------------ parsing

_JSON_STRING = r'"((?:[^"\\]|\\.)*)'
_LABELLED = re.compile(
    r"^\s*(?:\*\*)?(question|q|answer|a)(?:\*\*)?\s*[:：]\s*(?:\*\*)?\s*", re.IGNORECASE | re.MULTILINE
)


def parse_answer(text: str, fields: tuple[str, ...]) -> dict[str, str] | None:
    """The fields from a model's answer: JSON (even cut short), else 'Question: ... Answer: ...'."""
    found = _parse_json(text, fields)
    if found is None:
        found = _parse_labelled(text, fields)
    return found


class Answer(BaseModel):
    """What a model is asked to return: a question, and (flashcards) its answer."""

    model_config = ConfigDict(extra="ignore", strict=True)

    question: str
    answer: str | None = None


def _parse_json(text: str, fields: tuple[str, ...]) -> dict[str, str] | None:
    start = text.find("{")
    if start >= 0:
        end = text.rfind("}")
        if end > start:
            try:
                parsed = Answer.model_validate_json(text[start : end + 1])
            except ValidationError:
                parsed = None
            if parsed is not None and all(isinstance(getattr(parsed, f), str) for f in fields):
                return {f: getattr(parsed, f) for f in fields}
    # Tolerant: each field's string value, even when the object was cut short.
    out = {}
    for f in fields:
        m = re.search(rf'"{f}"\s*:\s*"?' + _JSON_STRING + r'("?)', text)  # '""x': small models double it
        if not m:
            return None
        raw = m.group(1)
        try:
            out[f] = json.loads(f'"{raw}"')
        except json.JSONDecodeError:
            out[f] = raw
    return out


def _parse_labelled(text: str, fields: tuple[str, ...]) -> dict[str, str] | None:
    parts: dict[str, str] = {}
    marks = list(_LABELLED.finditer(text))
    for i, m in enumerate(marks):
        key = "question" if m.group(1).lower() in ("question", "q") else "answer"
        end = marks[i + 1].start() if i + 1 < len(marks) else len(text)
        parts.setdefault(key, text[m.end() : end].strip())
    if all(f in parts for f in fields):
        return {f: parts[f] for f in fields}
    return None


# ------------------------------------------------------------------ validation

MIN_QUESTION_CHARS = 10
MAX_QUESTION_CHARS = 500
MAX_ANSWER_CHARS = 5000


_NON_WORD = re.compile(r"\W+")


def _norm(text: str) -> str:
    return _NON_WORD.sub(" ", text).strip().lower()


@functools.cache
def _task_norms(task: Task) -> tuple[str, str]:
    """The normalised prompt (without a passage) and worked-example question of a task."""
    example = parse_answer(task.example[1], ("question",))
    return _norm(task.user.format(text="")), _norm(example["question"] if example else "")


def validate(
    task: Task, passage: Passage, parsed: dict[str, str] | None
) -> tuple[dict[str, str] | None, str]:
    """``(cleaned fields, "")`` for a valid answer, else ``(None, reason)``."""
    if parsed is None:
        return None, "unparseable"
    fields = {k: v.strip().strip('"').strip() for k, v in parsed.items()}
    question = fields.get("question", "")
    if not question:
        return None, "empty_question"
    if "answer" in task.fields and not fields.get("answer"):
        return None, "empty_answer"
    if not question.endswith("?"):
        return None, "not_a_question"
    if len(question) < MIN_QUESTION_CHARS:
        return None, "question_too_short"
    if len(question) > MAX_QUESTION_CHARS:
        return None, "question_too_long"
    answer = fields.get("answer", "")
    if len(answer) > MAX_ANSWER_CHARS:
        return None, "answer_too_long"
    prompt, example = _task_norms(task)
    nq, np_ = _norm(question), _norm(passage.text)
    if "{text}" in question or nq in (prompt, np_):
        return None, "echo_of_prompt"
    if nq == example:
        return None, "copies_example"
    if answer:
        na = _norm(answer)
        if na in (nq, prompt, "", np_):
            return None, "answer_copies_prompt" if na != nq else "answer_copies_question"
    return fields, ""


def record_fields(task: Task, passage: Passage, fields: dict[str, str]) -> dict[str, str]:
    """instruction/input/output of the record made from a validated answer."""
    if task.name == "wikidoc_textbook":
        _, body = split_section(passage.text)
        return {"instruction": INSTRUCTION, "input": fields["question"], "output": body}
    return {"instruction": INSTRUCTION, "input": fields["question"], "output": fields["answer"]}


# ------------------------------------------------------------------ the judge


@dataclass(frozen=True)
class Judge:
    """A second opinion on a pair that passed validation and the support check
    (meadow.convert.grounding): the same backend is asked whether the passage supports the
    answer and the answer answers the question. Versioned and cached like the tasks: the
    messages and parameters are the request's cache key."""

    name: str
    version: str
    user: str  # template with {text}, {question}, {answer}
    examples: tuple[tuple[str, str, str, str], ...]  # (passage text, question, answer, verdict)
    max_tokens: int = 24

    def messages(self, text: str, question: str, answer: str) -> list[Message]:
        out: list[Message] = [{"role": "system", "content": _JUDGE_SYSTEM}]
        for ex_text, ex_question, ex_answer, verdict in self.examples:
            out.append({"role": "user", "content": self._user(ex_text, ex_question, ex_answer)})
            out.append({"role": "assistant", "content": json.dumps({"verdict": verdict})})
        out.append({"role": "user", "content": self._user(text, question, answer)})
        return out

    def _user(self, text: str, question: str, answer: str) -> str:
        return self.user.format(text=text, question=question, answer=answer)

    def json_schema(self) -> dict[str, Any]:
        return {
            "name": f"{self.name}_{self.version}",
            "schema": {
                "type": "object",
                "properties": {"verdict": {"type": "string", "enum": list(VERDICTS)}},
                "required": ["verdict"],
                "additionalProperties": False,
            },
        }


_JUDGE_SYSTEM = (
    "You check training data for a medical question answering assistant. "
    "Reply with one JSON object and nothing else."
)
VERDICTS = ("supported", "unsupported")
JUDGE_PREFILL = '{"verdict": "'

JUDGE = Judge(
    name="grounding_judge",
    version="v1",
    user=(
        "Below is a source text, then a question and an answer written from it. The answer is "
        "supported when everything it says is stated in the source text and it answers the "
        "question. A fact that the source text does not state, a changed name or number, or an "
        "answer to another question makes it unsupported.\n\n"
        "Source text:\n{text}\n\nQuestion: {question}\nAnswer: {answer}\n\n"
        'Reply as JSON: {{"verdict": "supported"}} or {{"verdict": "unsupported"}}'
    ),
    examples=(
        (
            "Front: Drug of choice for absence seizures?\nBack: Ethosuximide",
            "What is the drug of choice for absence seizures?",
            "The drug of choice for absence seizures is valproate.",
            "unsupported",
        ),
        (
            "Front: Normal adult resting heart rate?\nBack: 60-100 beats per minute",
            "What is the normal resting heart rate of an adult?",
            "The normal resting heart rate of an adult is 60 to 100 beats per minute.",
            "supported",
        ),
    ),
)

_VERDICT = re.compile(r"\b(unsupported|not supported|supported|yes|no)\b", re.IGNORECASE)


def parse_verdict(text: str) -> bool | None:
    """True (supported), False (unsupported) or None (no verdict found) from a judge's answer."""
    m = re.search(r'"verdict"\s*:\s*"([^"]*)', text)
    m = _VERDICT.search(m.group(1) if m else text)
    if m is None:
        return None
    return m.group(1).lower() in ("supported", "yes")
