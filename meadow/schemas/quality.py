"""The quality sections of a recipe: ``filters:`` (global and per source), ``near_dedup:`` and
``decontaminate:``. The steps that use them live in meadow/quality/."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class FilterSettings(BaseModel):
    """The ``filters:`` of a recipe (global) or of one of its sources (overrides, key by key)."""

    model_config = ConfigDict(extra="forbid")

    min_instruction_chars: int | None = Field(None, ge=1, description="drop shorter instructions")
    max_instruction_chars: int | None = Field(None, ge=1, description="drop longer instructions")
    min_output_chars: int | None = Field(None, ge=1, description="drop shorter outputs")
    max_output_chars: int | None = Field(None, ge=1, description="drop longer outputs")
    languages: list[str] | None = Field(
        None, description="keep only records in these languages (ISO 639-1 codes, e.g. [en]); default: off"
    )
    language_min_chars: int = Field(
        100, ge=1, description="texts shorter than this are not judged (language id is unreliable on them)"
    )
    language_min_confidence: float = Field(
        0.5, ge=0, le=1, description="a text is judged only when the identifier is at least this sure"
    )
    boilerplate: bool = Field(False, description="drop outputs with HTML, wiki markup or web page leftovers")
    copies_question: bool = Field(
        True, description="drop records whose output repeats the instruction and/or input (normalised)"
    )
    copy_ratio: float | None = Field(
        None,
        gt=0,
        le=1,
        description="also drop outputs holding at least this share of the question's word 3-grams "
        "(and at most twice its length); default: off",
    )
    include_tags: list[str] | None = Field(
        None, description="StackExchange, Anki: keep only records with one of these tags (shell patterns)"
    )
    exclude_tags: list[str] | None = Field(
        None, description="StackExchange, Anki: drop records with any of these tags (shell patterns)"
    )

    @field_validator("languages")
    @classmethod
    def _languages(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        out = [v.strip().lower() for v in value]
        bad = [v for v in out if not re.fullmatch(r"[a-z]{2,3}", v)]
        if bad or not out:
            raise ValueError(f"expected ISO 639-1 language codes like en, de; got {bad or value!r}")
        return out

    @field_validator("include_tags", "exclude_tags")
    @classmethod
    def _tags(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        out = [v.strip().lower() for v in value]
        if any(not v for v in out):
            raise ValueError("a tag must not be empty")
        return out

    @model_validator(mode="after")
    def _bounds(self) -> FilterSettings:
        for what in ("instruction", "output"):
            lo, hi = getattr(self, f"min_{what}_chars"), getattr(self, f"max_{what}_chars")
            if lo is not None and hi is not None and lo > hi:
                raise ValueError(f"min_{what}_chars ({lo}) is larger than max_{what}_chars ({hi})")
        return self

    def sets_tags(self) -> bool:
        return self.include_tags is not None or self.exclude_tags is not None


def merge(base: FilterSettings, override: FilterSettings) -> FilterSettings:
    """``base`` with the keys ``override`` sets explicitly (``null`` included) replaced."""
    data = base.model_dump()
    data.update(override.model_dump(include=override.model_fields_set))
    return FilterSettings.model_validate(data)


class NearDedup(BaseModel):
    """Near-duplicate removal across every source of a build (MinHash LSH, meadow/near_dedup.py)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(True, description="false: keep the settings but skip the step")
    threshold: float = Field(
        0.8, gt=0, le=1, description="Jaccard similarity of word shingles from which two are near duplicates"
    )
    shingle: int = Field(5, ge=1, le=32, description="words per shingle (n-gram)")
    num_perm: int = Field(128, ge=16, le=1024, description="MinHash permutations: more find more, slower")
    oversample: float = Field(
        0.1,
        ge=0,
        le=10,
        description="a source with n keeps n * (1 + oversample) candidates to replace near duplicates",
    )


class DecontaminateSettings(BaseModel):
    """The recipe's ``decontaminate:``: which benchmarks, and how records are matched to them."""

    model_config = ConfigDict(extra="forbid")

    benchmarks: list[str] | None = Field(
        None, description="names of the recipe's benchmarks to check against (default: all); [] turns it off"
    )
    ngram: int = Field(13, ge=3, le=50, description="words per n-gram (GPT-3's contamination analysis: 13)")
    short_ngram: int = Field(8, ge=3, le=50, description="words per n-gram for short questions")
    short_below: int = Field(
        13, ge=1, description="questions of fewer words than this (normalised) use short_ngram"
    )
    exact: bool = Field(True, description="also match a record field equal to a whole (normalised) question")
    common: int = Field(
        10, ge=1, description="an n-gram found in more than this many questions is boilerplate: not indexed"
    )
    coverage: float = Field(
        0.4,
        gt=0,
        le=1,
        description="a record holds a question when at least this share of the question's informative "
        "words (weighed by rarity among the benchmark questions) lie inside n-grams the two share",
    )
    min_words: int = Field(
        3,
        ge=1,
        description="a question with fewer informative (not stock) words than this is matched with its "
        "options",
    )

    @model_validator(mode="after")
    def _sizes(self) -> DecontaminateSettings:
        if self.short_ngram > self.ngram:
            raise ValueError(f"short_ngram ({self.short_ngram}) is larger than ngram ({self.ngram})")
        return self
