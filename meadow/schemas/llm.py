"""The `llm:` section of a recipe: which model rephrases passages, and how."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class LLMSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    backend: Literal["local", "openai", "llama_cpp"] = Field(
        "local",
        description="local: a model run in-process by transformers; openai: any OpenAI-compatible server "
        "(OpenAI, vLLM, llama.cpp server, Ollama); llama_cpp: the GGUF run in-process by llama-cpp-python",
    )
    model: str = Field(
        "smollm2",
        description="local/llama_cpp: 'smollm2' (the embedded SmolLM2-135M-Instruct), a local path or a "
        "cached Hub id; openai: the server's model name (medAlpaca used gpt-3.5-turbo)",
    )
    base_url: str | None = Field(None, description="openai: the server's URL, e.g. http://127.0.0.1:8000/v1")
    api_key_env: str = Field(
        "OPENAI_API_KEY", description="openai: the environment variable that holds the API key"
    )
    prefill_as_assistant: bool = Field(
        False,
        description="openai: send the JSON prefill as a final assistant message (llama.cpp and vLLM "
        "servers continue it; OpenAI's API does not)",
    )
    structured_output: Literal["none", "json_schema", "json_object"] = Field(
        "none",
        description="openai: constrain the answer to the task's JSON schema: json_schema (OpenAI, vLLM, "
        "llama.cpp's own server) or json_object with a schema (llama-cpp-python's server)",
    )
    prefill: bool = Field(True, description='start the answer with {"question": " (local backends)')
    temperature: float = Field(0.0, ge=0.0, le=2.0)
    max_tokens: int = Field(384, ge=16)
    seed: int = 0
    concurrency: int = Field(8, ge=1, le=512, description="requests in flight at once")
    batch_size: int = Field(8, ge=1, description="local: requests generated together")
    timeout: float = Field(60.0, gt=0, description="seconds before a request is abandoned and retried")
    max_retries: int = Field(
        6, ge=0, description="retries of a request after 429/5xx/timeouts/dropped connections"
    )
    backoff_base: float = Field(1.0, gt=0, description="first retry delay in seconds (doubles, with jitter)")
    backoff_max: float = Field(60.0, gt=0)
    invalid_retries: int = Field(2, ge=0, description="re-asks after an invalid answer, before dropping it")
    retry_temperature: float = Field(0.7, ge=0.0, le=2.0, description="temperature of those re-asks")
    budget_tokens: int | None = Field(None, ge=1, description="stop cleanly once this many tokens are spent")
    budget_usd: float | None = Field(None, gt=0, description="stop cleanly once this much is spent")
    price_input_per_1m: float = Field(0.0, ge=0, description="USD per 1M prompt tokens (for cost accounting)")
    price_output_per_1m: float = Field(0.0, ge=0, description="USD per 1M completion tokens")
    cache: str = Field("data/cache/llm.sqlite", description="the answer cache (relative to the working dir)")
    replay: bool = Field(False, description="use cached answers only; a cache miss is an error")
    samples: int = Field(20, ge=0, description="accepted and rejected pairs per source written for review")
    min_support: float | None = Field(
        0.85,
        ge=0.0,
        le=1.0,
        description="grounding: the least share of a generated answer's content words, numbers and "
        "units (beyond those of its question) that its passage must hold; a number not in the "
        "passage, or one end of a range without the other, fails whatever the share. Below it the "
        "answer is re-asked, then dropped as unsupported_answer (meadow.convert.grounding); null "
        "turns the check off",
    )
    judge: bool = Field(
        False,
        description="grounding: also ask the same backend whether the passage supports each pair "
        "(prompt grounding_judge, one more cached request per pair); a pair it rejects is re-asked, "
        "then dropped as judge_rejected",
    )

    @model_validator(mode="after")
    def _check(self) -> LLMSettings:
        if self.backend != "openai" and self.base_url:
            raise ValueError("base_url applies to backend: openai only")
        if self.budget_usd is not None and not (self.price_input_per_1m or self.price_output_per_1m):
            raise ValueError("budget_usd needs price_input_per_1m / price_output_per_1m to count cost")
        return self
