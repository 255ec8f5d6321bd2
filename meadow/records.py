"""The two things loaders produce: ready instruction `Record`s and `Passage`s that need an LLM."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

MAX_TEXT_CHARS = 500_000
"""Longest text field accepted; longer fields (a runaway 10 MB cell) are rejected as too long."""


def _check_text(value: str, *, allow_empty: bool) -> str:
    if len(value) > MAX_TEXT_CHARS:
        raise ValueError(f"longer than {MAX_TEXT_CHARS} characters ({len(value)})")
    if "\x00" in value:
        raise ValueError("contains a NUL byte")
    if not allow_empty and not value.strip():
        raise ValueError("must not be empty or only whitespace")
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    @field_validator("source", "id", check_fields=False)
    @classmethod
    def _name(cls, value: str) -> str:
        return _check_text(value, allow_empty=False)


class Record(_Strict):
    """One instruction-tuning example in medAlpaca's format, plus where it came from."""

    instruction: str
    input: str = ""
    output: str
    source: str = Field(description="source name, e.g. 'stackexchange/biology'")
    id: str = Field(description="stable id derived from the upstream id or content, never a row counter")
    meta: dict[str, Any] = Field(default_factory=dict)

    @field_validator("instruction", "output")
    @classmethod
    def _required_text(cls, value: str) -> str:
        return _check_text(value, allow_empty=False)

    @field_validator("input")
    @classmethod
    def _optional_text(cls, value: str) -> str:
        return _check_text(value, allow_empty=True)

    def to_alpaca(self) -> dict[str, str]:
        """The row of merged_medical_meadow.json: medAlpaca's three keys, then source and id."""
        return {
            "instruction": self.instruction,
            "input": self.input,
            "output": self.output,
            "source": self.source,
            "id": self.id,
        }


class Passage(_Strict):
    """Text that an LLM must turn into a question/answer pair (see meadow.convert)."""

    text: str
    source: str
    id: str
    task: Literal["flashcard", "wikidoc_textbook"] = Field(description="which rephrasing prompt applies")
    meta: dict[str, Any] = Field(default_factory=dict)

    @field_validator("text")
    @classmethod
    def _required_text(cls, value: str) -> str:
        return _check_text(value, allow_empty=False)


def describe_validation_error(err: ValidationError) -> str:
    """'output: must not be empty or only whitespace; input: Input should be a valid string'."""
    parts = []
    for e in err.errors():
        field = ".".join(str(p) for p in e["loc"]) or "record"
        msg = e["msg"].removeprefix("Value error, ")
        parts.append(f"{field}: {msg}")
    return "; ".join(parts)
