"""Generation through an OpenAI-compatible server (OpenAI, vLLM, llama.cpp server, Ollama) for
``meadow eval --mode generate --base-url URL``: chat completions at temperature 0 with a fixed
seed, several requests in flight, the client's retries with backoff on 429/5xx."""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from meadow.errors import MeadowError
from meadow.eval.generate import cut


@dataclass(frozen=True)
class Server:
    base_url: str
    model: str
    api_key_env: str = "OPENAI_API_KEY"
    concurrency: int = 8
    max_retries: int = 6
    timeout: float = 120.0

    @property
    def identity(self) -> str:
        return f"{self.model}@{self.base_url}"

    def generate(
        self, conversations: Sequence[list[dict[str, str]]], *, max_tokens: int = 32, progress: bool = False
    ) -> list[str]:
        """The answer to each conversation, in order, cut at a medAlpaca section marker."""
        import openai
        from tqdm.auto import tqdm

        client = openai.OpenAI(
            base_url=self.base_url,
            api_key=os.environ.get(self.api_key_env) or "unused",
            max_retries=self.max_retries,
            timeout=self.timeout,
        )

        def ask(messages: list[dict[str, str]]) -> str:
            try:
                reply = client.chat.completions.create(
                    model=self.model,
                    messages=messages,  # type: ignore[arg-type]
                    temperature=0.0,
                    seed=0,
                    max_tokens=max_tokens,
                )
            except openai.OpenAIError as err:
                raise MeadowError(f"server {self.base_url}: {type(err).__name__}: {err}") from None
            return cut(reply.choices[0].message.content or "")

        with ThreadPoolExecutor(max_workers=max(1, self.concurrency)) as pool:
            return list(
                tqdm(
                    pool.map(ask, conversations),
                    total=len(conversations),
                    desc="generate",
                    unit="q",
                    disable=not progress,
                )
            )
