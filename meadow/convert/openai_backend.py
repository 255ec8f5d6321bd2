"""Any OpenAI-compatible chat server through the official `openai` client.

OpenAI itself, vLLM, the llama.cpp server, Ollama... The API key comes from the environment
variable the recipe names; it is never logged, cached or written anywhere. The client's own
retries are off: the runner retries, so it can count attempts and honour Retry-After.
"""

from __future__ import annotations

import os
from typing import Any

from meadow.convert.backend import BackendError, Completion, GenParams, Message
from meadow.errors import MeadowError

OPENAI_URL = "https://api.openai.com/v1"
NO_KEY = "no-key"  # keyless local servers accept any key; the client insists on one


class OpenAIBackend:
    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        timeout: float = 60.0,
        prefill_as_assistant: bool = False,
        structured_output: str = "none",
    ):
        import openai  # lazily: only builds that ask an LLM need it

        key = os.environ.get(api_key_env)
        if not key:
            if base_url is None or base_url.rstrip("/") == OPENAI_URL:
                raise MeadowError(
                    f"the OpenAI API needs a key: set the environment variable {api_key_env} "
                    "(or name another one with llm.api_key_env in the recipe)"
                )
            key = NO_KEY
        self.model = model
        self.prefill_as_assistant = prefill_as_assistant
        self.structured_output = structured_output
        self._openai = openai
        self._client = openai.AsyncOpenAI(api_key=key, base_url=base_url, timeout=timeout, max_retries=0)

    @property
    def identity(self) -> str:
        # What shapes the request beyond messages and parameters is part of the cache key too.
        extra = "".join(
            [
                ";prefill=assistant" if self.prefill_as_assistant else "",
                f";format={self.structured_output}" if self.structured_output != "none" else "",
            ]
        )
        return f"openai:{self.model}{extra}"

    async def complete(self, messages: list[Message], params: GenParams) -> Completion:
        openai = self._openai
        send = list(messages)
        if params.prefill and self.prefill_as_assistant:
            send.append({"role": "assistant", "content": params.prefill})
        kwargs: dict[str, Any] = {
            "model": self.model,
            "messages": send,
            "temperature": params.temperature,
            "max_tokens": params.max_tokens,
        }
        if params.seed is not None:
            kwargs["seed"] = params.seed + params.attempt
        if self.structured_output == "json_schema" and params.json_schema:
            kwargs["response_format"] = {"type": "json_schema", "json_schema": params.json_schema}
        elif self.structured_output == "json_object" and params.json_schema:
            kwargs["response_format"] = {"type": "json_object", "schema": params.json_schema["schema"]}
        try:
            response = await self._client.chat.completions.create(**kwargs)
        except openai.APIStatusError as err:
            status = err.status_code
            retry_after = _retry_after(err.response.headers.get("retry-after"))
            retryable = status in (408, 409, 429) or status >= 500
            raise BackendError(
                f"HTTP {status}: {_short(err.message)}",
                retryable=retryable,
                retry_after=retry_after,
                status=status,
            ) from None
        except openai.APITimeoutError:
            raise BackendError("timed out", retryable=True) from None
        except openai.APIConnectionError as err:
            raise BackendError(f"connection failed: {_short(str(err))}", retryable=True) from None
        except openai.APIResponseValidationError as err:
            raise BackendError(f"malformed response: {_short(str(err))}", retryable=True) from None
        if not response.choices:
            raise BackendError("the server returned no choices", retryable=True)
        choice = response.choices[0]
        text = choice.message.content or ""
        if params.prefill and self.prefill_as_assistant and not text.lstrip().startswith("{"):
            text = params.prefill + text  # the server continued the prefill: put it back in front
        usage = response.usage
        return Completion(
            text=text,
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0,
            finish_reason=choice.finish_reason,
        )

    async def aclose(self) -> None:
        await self._client.close()


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: rare from API servers; fall back to our backoff


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
