"""A recipe's ``benchmarks:`` entries: evaluation sets that are fetched and decontaminated against."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from meadow import sources
from meadow.schemas.fetch import FetchEntry

PUBMEDQA_LICENSE = "MIT (github.com/pubmedqa/pubmedqa LICENSE)"
PUBMEDQA_CITATION = """@inproceedings{jin2019pubmedqa,
  title={PubMedQA: A Dataset for Biomedical Research Question Answering},
  author={Jin, Qiao and Dhingra, Bhuwan and Liu, Zhengping and Cohen, William and Lu, Xinghua},
  booktitle={Proceedings of EMNLP-IJCNLP 2019},
  pages={2567--2577},
  year={2019}
}"""


class BenchmarkEntry(BaseModel):
    """One evaluation set of a recipe's ``benchmarks:``: its questions are never trained on."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["mmlu", "medqa", "usmle", "pubmedqa"] = Field(
        description="the published format (see meadow/eval/benchmarks.py)"
    )
    path: str | list[str] = Field(description="file path(s) or glob(s), relative to the working directory")
    subjects: list[str] | None = Field(
        None, description="mmlu: the subjects to read (default: the six medical subjects)"
    )
    fetch: list[FetchEntry] = Field(
        default_factory=list, description="where `meadow fetch` gets the files (see meadow/fetch_spec.py)"
    )

    @field_validator("fetch", mode="before", json_schema_input_type=FetchEntry | list[FetchEntry])
    @classmethod
    def _one_or_more(cls, value: Any) -> Any:
        return [value] if isinstance(value, dict) else value

    @model_validator(mode="after")
    def _subjects_for_mmlu(self) -> BenchmarkEntry:
        if self.subjects is not None and self.kind != "mmlu":
            raise ValueError("'subjects' applies to kind mmlu only")
        return self

    def patterns(self) -> list[str]:
        return [self.path] if isinstance(self.path, str) else list(self.path)

    def license(self) -> str:
        return PUBMEDQA_LICENSE if self.kind == "pubmedqa" else sources.get(self.kind).license

    def citation(self) -> str:
        return PUBMEDQA_CITATION if self.kind == "pubmedqa" else sources.get(self.kind).citation
