"""Backends that run the model in this process: transformers (batched) and llama.cpp (a GGUF).

LocalBackend gathers concurrent ``complete()`` calls into batches (up to ``batch_size``, waiting
at most ``max_wait_ms`` for more) and runs ``model.generate`` on them in one worker thread, so
the event loop never waits on the model. Each request keeps its own parameters inside a batch:
its own token limit (a per-row stopping criterion) and its own temperature and seed (a per-row
sampler), so an answer does not depend on which requests it was batched with, up to
floating-point effects of padding.

The prompt is the tokenizer's chat template applied to the messages, followed by
``params.prefill``: the model continues the prefill, and the completion's text starts with it.
Small models need that to answer in JSON (SmolLM2-135M does, given ``{"question": "``). Messages
that end with an assistant message are continued too, but that message is not repeated in the text.
``completion_tokens`` counts the tokens generated, the end-of-sequence token included.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from meadow.convert.backend import BackendError, Completion, GenParams, Message
from meadow.errors import MeadowError
from meadow.models import SMOLLM2_NAME, gguf_name, locate_gguf, resolve_model, sha256_file

log = logging.getLogger(__name__)


@dataclass
class _Request:
    messages: list[Message]
    params: GenParams
    future: asyncio.Future[Completion]


@dataclass
class BatchStats:
    """What a LocalBackend has generated so far."""

    batches: int = 0
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    sizes: list[int] = field(default_factory=list)

    @property
    def tokens_per_second(self) -> float:
        return self.completion_tokens / self.seconds if self.seconds else 0.0


class LocalBackend:
    """A causal LM run in-process by transformers; CPU unless CUDA is available.

    ``model``: anything meadow.models.resolve_model accepts (default: the embedded SmolLM2).
    One model per backend; ``aclose()`` frees it. Use it from one event loop at a time.
    """

    def __init__(
        self,
        model: str | None = None,
        *,
        batch_size: int = 8,
        max_wait_ms: float = 5.0,
        device: str | None = None,
        dtype: Any = None,
        allow_download: bool = False,
    ):
        import torch

        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.resolved = resolve_model(model, allow_download=allow_download)
        self.batch_size = batch_size
        self.max_wait = max_wait_ms / 1000
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        if dtype is None:
            dtype = torch.float32
            if self.device.type == "cuda":
                dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        tokenizer = self.resolved.load_tokenizer(padding_side="left")
        if not getattr(tokenizer, "chat_template", None):
            raise MeadowError(f"model {self.resolved.name}: its tokenizer has no chat template")
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        model_ = self.resolved.load_model(dtype=dtype).to(self.device)
        model_.eval()
        eos = model_.generation_config.eos_token_id
        eos_ids = set(eos if isinstance(eos, list) else [] if eos is None else [eos])
        if tokenizer.eos_token_id is not None:
            eos_ids.add(tokenizer.eos_token_id)
        self._eos = sorted(eos_ids)
        self._max_positions = getattr(model_.config, "max_position_embeddings", None)
        self._tokenizer: Any = tokenizer
        self._model: Any = model_
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="meadow-local")
        self._pending: list[_Request] = []
        self._batcher: asyncio.Task[None] | None = None
        self._full: asyncio.Event | None = None
        self._inflight: Future[Any] | None = None
        self._closed = False
        self.stats = BatchStats()

    @property
    def identity(self) -> str:
        return f"local:{self.resolved.identity}"

    async def complete(self, messages: list[Message], params: GenParams) -> Completion:
        if self._closed:
            raise BackendError("the local backend is closed", retryable=False)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Completion] = loop.create_future()
        self._pending.append(_Request(list(messages), params, future))
        if self._batcher is None or self._batcher.done():
            self._full = asyncio.Event()
            self._batcher = loop.create_task(self._run_batches())
        elif self._full is not None and len(self._pending) >= self.batch_size:
            self._full.set()
        return await future

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._model is not None and self._inflight is not None:
            with contextlib.suppress(Exception):
                await asyncio.wrap_future(self._inflight)  # stops at its next token: see _Abort
        if self._batcher is not None and not self._batcher.done():
            self._batcher.cancel()
            with contextlib.suppress(asyncio.CancelledError, RuntimeError):
                await self._batcher
        for request in self._pending:
            _settle(request.future, BackendError("the local backend was closed", retryable=False))
        self._pending.clear()
        self._executor.shutdown(wait=True)
        on_cuda = self.device.type == "cuda"
        self._model = None
        self._tokenizer = None
        gc.collect()
        if on_cuda:
            import torch

            torch.cuda.empty_cache()

    # --- batching, on the event loop ---------------------------------------------------------

    async def _run_batches(self) -> None:
        assert self._full is not None
        while self._pending and not self._closed:
            if len(self._pending) < self.batch_size:
                self._full.clear()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._full.wait(), self.max_wait)
            batch = [r for r in self._pending[: self.batch_size] if not r.future.done()]
            del self._pending[: self.batch_size]
            if not batch:
                continue
            self._inflight = self._executor.submit(self._generate, [(r.messages, r.params) for r in batch])
            try:
                results = await asyncio.wrap_future(self._inflight)
            except asyncio.CancelledError:
                for request in batch:
                    _settle(request.future, BackendError("the local backend was closed", retryable=False))
                raise
            except Exception as err:  # a bug or an out-of-memory: every request of the batch fails
                message = f"local generation failed: {type(err).__name__}: {err}"
                results = [BackendError(message, retryable=False)] * len(batch)
            finally:
                self._inflight = None
            for request, result in zip(batch, results, strict=True):
                _settle(request.future, result)

    # --- generation, in the worker thread ----------------------------------------------------

    def _generate(self, requests: list[tuple[list[Message], GenParams]]) -> list[Completion | BackendError]:
        import torch
        from transformers import GenerationConfig, LogitsProcessorList, StoppingCriteriaList

        tokenizer, model = self._tokenizer, self._model
        if model is None:
            return [BackendError("the local backend was closed", retryable=False)] * len(requests)
        results: list[Completion | BackendError | None] = [None] * len(requests)
        rows: list[int] = []
        prompts: list[list[int]] = []
        for i, (messages, params) in enumerate(requests):
            try:
                text = self._prompt_text(messages) + params.prefill
            except Exception as err:  # a template that rejects these messages (roles, order)
                results[i] = BackendError(f"chat template: {err}", retryable=False)
                continue
            ids = tokenizer(text, add_special_tokens=False)["input_ids"]
            if self._max_positions and len(ids) + params.max_tokens > self._max_positions:
                results[i] = BackendError(
                    f"prompt ({len(ids)} tokens) + max_tokens ({params.max_tokens}) exceed the model's "
                    f"context of {self._max_positions} tokens",
                    retryable=False,
                )
                continue
            rows.append(i)
            prompts.append(ids)
        if not rows:
            return results  # type: ignore[return-value]

        started = time.perf_counter()
        params_of = [requests[i][1] for i in rows]
        batch = tokenizer.pad({"input_ids": prompts}, padding=True, return_tensors="pt").to(self.device)
        width = batch["input_ids"].shape[1]
        limits = [p.max_tokens for p in params_of]
        config = GenerationConfig(
            max_new_tokens=max(limits),
            do_sample=False,  # sampling, where asked, is done per row by _RowSampler
            eos_token_id=self._eos,
            pad_token_id=tokenizer.pad_token_id,
        )
        processors = LogitsProcessorList()
        if any(p.temperature > 0 for p in params_of):
            processors.append(_RowSampler(params_of, self.device))
        stopping = StoppingCriteriaList([_RowLimits(width, limits), _Abort(self)])
        with torch.inference_mode():
            out = model.generate(
                **batch, generation_config=config, logits_processor=processors, stopping_criteria=stopping
            )
        if self._closed:  # stopped early by _Abort: these are not answers
            return [BackendError("the local backend was closed", retryable=False)] * len(requests)
        new_tokens = out[:, width:].tolist()
        elapsed = time.perf_counter() - started

        eos = set(self._eos)
        completion_total = 0
        for row, i in enumerate(rows):
            params = params_of[row]
            tokens = new_tokens[row][: params.max_tokens]
            end = next((j for j, t in enumerate(tokens) if t in eos), None)
            if end is None:
                generated, finish = tokens, "length"
            else:
                generated, finish, tokens = tokens[:end], "stop", tokens[: end + 1]
            completion_total += len(tokens)
            results[i] = Completion(
                text=params.prefill + tokenizer.decode(generated, skip_special_tokens=True),
                prompt_tokens=len(prompts[row]),
                completion_tokens=len(tokens),
                finish_reason=finish,
                extra={"batch_size": len(rows)},
            )
        self.stats.batches += 1
        self.stats.requests += len(rows)
        self.stats.sizes.append(len(rows))
        self.stats.prompt_tokens += sum(len(p) for p in prompts)
        self.stats.completion_tokens += completion_total
        self.stats.seconds += elapsed
        log.debug("generated %d answers (%d tokens) in %.2f s", len(rows), completion_total, elapsed)
        return results  # type: ignore[return-value]

    def _prompt_text(self, messages: list[Message]) -> str:
        if messages and messages[-1].get("role") == "assistant":  # continue a partial answer
            return self._tokenizer.apply_chat_template(messages, tokenize=False, continue_final_message=True)
        return self._tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def _settle(future: asyncio.Future[Completion], result: Completion | BaseException) -> None:
    if future.done():  # the caller gave up (cancelled) meanwhile
        return
    if isinstance(result, BaseException):
        future.set_exception(result)
    else:
        future.set_result(result)


class _RowSampler:
    """Samples the rows whose temperature is > 0, each from its own generator seeded with
    ``seed + attempt``, and leaves greedy rows alone; generate() then takes the argmax, which is
    the sampled token. So a sampled answer is reproducible and independent of its batch."""

    def __init__(self, params: list[GenParams], device: Any):
        import torch

        self.rows = []
        for row, p in enumerate(params):
            if p.temperature > 0:
                generator = torch.Generator(device=device)
                if p.seed is None:
                    generator.seed()
                else:
                    generator.manual_seed(p.seed + p.attempt)
                self.rows.append((row, p.temperature, generator))

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        scores = scores.clone()
        for row, temperature, generator in self.rows:
            probs = torch.softmax(scores[row].float() / temperature, dim=-1)
            token = torch.multinomial(probs, 1, generator=generator)
            scores[row] = float("-inf")
            scores[row, token] = 0.0
        return scores


class _RowLimits:
    """Stops each row at its own max_tokens."""

    def __init__(self, prompt_width: int, limits: list[int]):
        self.prompt_width = prompt_width
        self.limits = limits

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        generated = input_ids.shape[1] - self.prompt_width
        return torch.tensor([generated >= n for n in self.limits], device=input_ids.device)


class _Abort:
    """Stops every row once the backend is closing."""

    def __init__(self, backend: LocalBackend):
        self.backend = backend

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        return torch.full((input_ids.shape[0],), self.backend._closed, device=input_ids.device)


class LlamaCppBackend:
    """A GGUF model run natively by llama-cpp-python (``pip install 'meadow[llama]'``).

    Requests run one at a time in a worker thread, each from a fresh context state, so an
    answer does not depend on the requests before it.
    """

    def __init__(
        self,
        model: str | None = None,
        *,
        n_ctx: int = 4096,
        seed: int = 0,
        n_threads: int | None = None,
        n_gpu_layers: int = 0,
    ):
        try:
            import llama_cpp
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter
        except ImportError as err:
            raise MeadowError(
                f"the llama_cpp backend needs llama-cpp-python ({err}): pip install 'meadow[llama]'"
            ) from None
        self.gguf = locate_gguf(model)
        self.name = SMOLLM2_NAME if model in (None, "smollm2") else gguf_name(self.gguf)
        self.sha256 = sha256_file(self.gguf)
        self.n_ctx = n_ctx
        self._llm: Any = llama_cpp.Llama(
            model_path=str(self.gguf),
            n_ctx=n_ctx,
            seed=seed,
            n_threads=n_threads,
            n_gpu_layers=n_gpu_layers,
            verbose=False,
        )
        template = self._llm.metadata.get("tokenizer.chat_template")
        if not template:
            raise MeadowError(f"model {self.gguf}: the GGUF holds no chat template")

        def token_text(token: int) -> str:
            return self._llm.detokenize([token], special=True).decode() if token != -1 else ""

        self._format = Jinja2ChatFormatter(
            template=template,
            eos_token=token_text(self._llm.token_eos()),
            bos_token=token_text(self._llm.token_bos()),
        )
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="meadow-llama")
        self._closed = False

    @property
    def identity(self) -> str:
        return f"llama_cpp:{self.name}@{self.sha256[:12]}"

    async def complete(self, messages: list[Message], params: GenParams) -> Completion:
        if self._closed:
            raise BackendError("the llama_cpp backend is closed", retryable=False)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._complete, list(messages), params)

    def _complete(self, messages: list[Message], params: GenParams) -> Completion:
        llm = self._llm
        if llm is None:
            raise BackendError("the llama_cpp backend was closed", retryable=False)
        try:
            text = self._format(messages=messages).prompt + params.prefill
        except Exception as err:
            raise BackendError(f"chat template: {err}", retryable=False) from None
        tokens = llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)
        if len(tokens) + params.max_tokens > self.n_ctx:
            raise BackendError(
                f"prompt ({len(tokens)} tokens) + max_tokens ({params.max_tokens}) exceed n_ctx={self.n_ctx}",
                retryable=False,
            )
        llm.reset()
        seed = (params.seed if params.seed is not None else 0) + params.attempt
        try:
            out = llm.create_completion(
                tokens,
                max_tokens=params.max_tokens,
                temperature=params.temperature,
                top_p=1.0,
                top_k=0,
                min_p=0.0,
                repeat_penalty=1.0,
                seed=seed,
            )
        except Exception as err:
            raise BackendError(f"llama.cpp: {type(err).__name__}: {err}", retryable=False) from None
        choice, usage = out["choices"][0], out["usage"]
        return Completion(
            text=params.prefill + choice["text"],
            prompt_tokens=usage["prompt_tokens"],
            completion_tokens=usage["completion_tokens"],
            finish_reason=choice["finish_reason"],
        )

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        await asyncio.get_running_loop().run_in_executor(None, self._executor.shutdown, True)
        if self._llm is not None:
            self._llm.close()
        self._llm = None
