"""Turn Passages into Records with an LLM: cache, bounded concurrency, retries, budget, validation.

``Rephraser`` is the async core; ``SyncRephraser`` runs it on a private event loop in a
background thread, so the (synchronous) build can hand it batches of passages while the
backend keeps one loop, one connection pool and one loaded model for the whole build.
"""

from __future__ import annotations

import asyncio
import bisect
import hashlib
import logging
import random
import threading
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from meadow.convert.backend import Backend, BackendError, Completion, GenParams, Message
from meadow.convert.cache import AnswerCache, ReplayMiss, request_key
from meadow.convert.grounding import Support, support
from meadow.convert.prompts import (
    JUDGE,
    JUDGE_PREFILL,
    PREFILL,
    TASKS,
    VERDICTS,
    Task,
    parse_answer,
    parse_verdict,
    record_fields,
    validate,
)
from meadow.errors import MeadowError
from meadow.records import Passage, Record
from meadow.schemas.llm import LLMSettings
from meadow.sources import Drop
from meadow.sources._common import make_record

log = logging.getLogger(__name__)

FATAL_STATUS = (401, 403, 404)


class BudgetExceeded(MeadowError):
    """The token or dollar budget is spent: the run stops cleanly, finished answers are cached."""


class _Failed(Exception):
    def __init__(self, reason: str, detail: str):
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Rejected(Drop):
    """A well-formed pair that the grounding checks turned down (``unsupported_answer``,
    ``judge_rejected``): the build keeps its record among the dropped samples for review."""

    record: Record | None = None


@dataclass
class ConvertStats:
    passages: int = 0
    accepted: int = 0
    requests: int = 0  # sent to the backend, retries included
    cache_hits: int = 0
    retries: int = 0
    prompt_tokens: int = 0  # of requests actually sent (cache hits cost nothing)
    completion_tokens: int = 0
    cost_usd: float = 0.0
    failed: Counter[str] = field(default_factory=Counter)
    judged: Counter[str] = field(default_factory=Counter)  # the judge's verdicts: supported, unsupported...
    accepted_samples: list[dict[str, Any]] = field(default_factory=list)
    rejected_samples: list[dict[str, Any]] = field(default_factory=list)

    def merge(self, other: ConvertStats, samples: int) -> None:
        """Add the counts of ``other`` (a rephrasing task run elsewhere). Of the samples, the
        ``samples`` lowest by their order hash are kept: the pick ``Rephraser._sample`` makes."""
        self.passages += other.passages
        self.accepted += other.accepted
        self.requests += other.requests
        self.cache_hits += other.cache_hits
        self.retries += other.retries
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.cost_usd += other.cost_usd
        self.failed.update(other.failed)
        self.judged.update(other.judged)
        for mine, theirs in (
            (self.accepted_samples, other.accepted_samples),
            (self.rejected_samples, other.rejected_samples),
        ):
            mine.extend(theirs)
            mine.sort(key=lambda e: e["_order"])
            del mine[samples:]

    def to_json(self) -> dict[str, Any]:
        return {
            "passages": self.passages,
            "accepted": self.accepted,
            "failed": dict(sorted(self.failed.items())),
            **({"judged": dict(sorted(self.judged.items()))} if self.judged else {}),
            "requests": self.requests,
            "cache_hits": self.cache_hits,
            "retries": self.retries,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cost_usd": round(self.cost_usd, 6),
        }


class Rephraser:
    def __init__(
        self,
        backend: Backend,
        cache: AnswerCache,
        settings: LLMSettings,
        *,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        seed: int = 0,
    ):
        self.backend = backend
        self.cache = cache
        self.settings = settings
        self.stats = ConvertStats()
        self._sleep = sleep
        self._rng = random.Random(seed)
        self._sem: asyncio.Semaphore | None = None
        self._spent_tokens = 0  # over the whole run, whatever source the stats are for
        self._spent_usd = 0.0
        self._stop: MeadowError | None = None

    # ------------------------------------------------------------ one passage

    async def convert(self, passage: Passage) -> Record | Drop:
        task = TASKS[passage.task]
        messages = task.messages(passage)
        s = self.settings
        self.stats.passages += 1
        reason, detail, answer = "unparseable", "", ""
        rejected: Record | None = None
        for attempt in range(s.invalid_retries + 1):
            params = GenParams(
                temperature=s.temperature if attempt == 0 else max(s.temperature, s.retry_temperature),
                max_tokens=s.max_tokens,
                seed=s.seed,
                prefill=PREFILL if s.prefill else "",
                json_schema=task.json_schema() if s.structured_output != "none" else None,
                attempt=attempt,
            )
            try:
                completion = await self._ask(messages, params)
            except _Failed as failed:
                self.stats.failed[failed.reason] += 1
                return Drop(failed.reason, passage.id, failed.detail)
            answer, detail, rejected = completion.text, "", None
            if completion.finish_reason == "length":
                reason, fields = "truncated", None
            else:
                fields, reason = validate(task, passage, parse_answer(answer, task.fields))
            grounded = None
            if fields is not None:
                grounded = self._support(task, passage, fields)
                item = make_record(
                    passage.id,
                    **record_fields(task, passage, fields),
                    source=passage.source,
                    id=passage.id,
                    meta={
                        **passage.meta,
                        "rephrased_by": self.backend.identity,
                        "prompt": f"{task.name}@{task.version}",
                        "attempt": attempt,
                        **({"support": grounded.score} if grounded is not None else {}),
                    },
                )
                if isinstance(item, Record):
                    try:
                        reason, detail = await self._ground(passage, item, grounded)
                    except _Failed as failed:
                        self.stats.failed[failed.reason] += 1
                        return Drop(failed.reason, passage.id, failed.detail)
                    if not reason:
                        self.stats.accepted += 1
                        self._sample(self.stats.accepted_samples, passage, answer, "", grounded)
                        return item
                    rejected = item
                else:
                    reason, detail = f"record_{item.reason}", item.detail
            self._sample(self.stats.rejected_samples, passage, answer, reason, grounded, detail)
        if rejected is not None:  # a well-formed pair, turned down by the grounding checks
            self.stats.failed[reason] += 1
            return Rejected(reason, passage.id, detail, record=rejected)
        reason = f"rephrase_{reason}"
        self.stats.failed[reason] += 1
        return Drop(reason, passage.id, detail or f"last answer: {answer[:200]!r}")

    def _support(self, task: Task, passage: Passage, fields: dict[str, str]) -> Support | None:
        """The support of a generated answer (None: the task generates no answer, or no check)."""
        if self.settings.min_support is None or "answer" not in task.fields:
            return None
        return support(passage.text, fields["question"], fields["answer"])

    async def _ground(self, passage: Passage, record: Record, grounded: Support | None) -> tuple[str, str]:
        """``("", "")`` for a pair that passes the support check and (with ``judge``) the judge,
        else the reason and detail of its rejection."""
        s = self.settings
        if grounded is not None and s.min_support is not None and not grounded.passes(s.min_support):
            return "unsupported_answer", grounded.describe(s.min_support)
        if not s.judge:
            return "", ""
        params = GenParams(
            temperature=0.0,
            max_tokens=JUDGE.max_tokens,
            seed=s.seed,
            prefill=JUDGE_PREFILL if s.prefill else "",
            json_schema=JUDGE.json_schema() if s.structured_output != "none" else None,
        )
        completion = await self._ask(JUDGE.messages(passage.text, record.input, record.output), params)
        verdict = parse_verdict(completion.text)
        self.stats.judged["unclear" if verdict is None else VERDICTS[not verdict]] += 1
        if verdict is False:
            return "judge_rejected", f"{JUDGE.name}@{JUDGE.version}: {completion.text[:200]!r}"
        return "", ""

    def _sample(
        self,
        bucket: list[dict[str, Any]],
        passage: Passage,
        answer: str,
        reason: str,
        grounded: Support | None = None,
        detail: str = "",
    ) -> None:
        """Keep the ``samples`` entries whose (id, answer) hash lowest: the same pick whatever
        order concurrent answers arrive in. ``bucket`` stays sorted by that hash."""
        limit = self.settings.samples
        if not limit:
            return
        order = hashlib.blake2b(f"{passage.id}\x1f{answer}".encode(), digest_size=8).hexdigest()
        if len(bucket) >= limit and order >= bucket[-1]["_order"]:
            return
        entry = {
            "_order": order,
            "id": passage.id,
            "task": passage.task,
            "passage": passage.text,
            "answer": answer,
            **({"reason": reason} if reason else {}),
            **({"support": grounded.score} if grounded is not None else {}),
            **({"detail": detail} if detail else {}),
        }
        bisect.insort(bucket, entry, key=lambda e: e["_order"])
        del bucket[limit:]

    # ------------------------------------------------------------ one request

    async def _ask(self, messages: list[Message], params: GenParams) -> Completion:
        identity = self.backend.identity
        key, request = request_key(identity, messages, params)
        hit = self.cache.get(key)
        if hit is not None:
            self.stats.cache_hits += 1
            return hit
        if self.cache.replay:
            raise ReplayMiss(
                f"replay: no cached answer for a request to {identity} (key {key[:16]}) "
                f"in {self.cache.path}; replay needs the cache of the build being reproduced, "
                "with the same model, prompts and settings"
            )
        s = self.settings
        assert self._sem is not None
        for k in range(s.max_retries + 1):
            try:
                async with self._sem:
                    self._check_budget()  # inside: requests waiting for a slot see what the others spent
                    self.stats.requests += 1
                    completion = await self.backend.complete(messages, params)
            except BackendError as err:
                if err.status in FATAL_STATUS:
                    raise MeadowError(
                        f"{identity}: {err} (check the model name, base_url and API key)"
                    ) from None
                kind = _failure_kind(err)
                if not err.retryable:
                    raise _Failed(f"request_{kind}", str(err)) from None
                if k == s.max_retries:
                    raise _Failed(f"request_{kind}", f"{err} (after {k + 1} attempts)") from None
                delay = self._rng.uniform(0, min(s.backoff_max, s.backoff_base * 2**k))  # full jitter
                if err.retry_after is not None:
                    delay = max(delay, min(err.retry_after, s.backoff_max * 10))
                self.stats.retries += 1
                log.debug("%s; retrying in %.2fs", err, delay)
                await self._sleep(delay)
                continue
            self.cache.put(key, identity, request, completion)
            self._account(completion)
            return completion
        raise AssertionError("unreachable")

    def _account(self, c: Completion) -> None:
        s = self.settings
        self.stats.prompt_tokens += c.prompt_tokens
        self.stats.completion_tokens += c.completion_tokens
        self._spent_tokens += c.prompt_tokens + c.completion_tokens
        cost = (c.prompt_tokens * s.price_input_per_1m + c.completion_tokens * s.price_output_per_1m) / 1e6
        self.stats.cost_usd += cost
        self._spent_usd += cost

    def _check_budget(self) -> None:
        s = self.settings
        if s.budget_tokens is not None and self._spent_tokens >= s.budget_tokens:
            raise BudgetExceeded(
                f"token budget spent: {self._spent_tokens:,} of {s.budget_tokens:,} tokens; "
                "answers so far are cached: raise llm.budget_tokens and run again to continue"
            )
        if s.budget_usd is not None and self._spent_usd >= s.budget_usd:
            raise BudgetExceeded(
                f"dollar budget spent: ${self._spent_usd:.4f} of ${s.budget_usd:.4f}; "
                "answers so far are cached: raise llm.budget_usd and run again to continue"
            )

    # ------------------------------------------------------------ many passages

    async def convert_many(
        self, passages: Sequence[Passage], on_done: Callable[[], None] | None = None
    ) -> list[Record | Drop]:
        """Results in input order. Stops cleanly (in-flight requests finish, nothing new starts)
        on a spent budget, a replay miss or a fatal server answer, then raises that error."""
        if self._sem is None:
            self._sem = asyncio.Semaphore(self.settings.concurrency)
        results: list[Record | Drop | None] = [None] * len(passages)
        todo = iter(enumerate(passages))
        workers = self.settings.concurrency

        async def worker() -> None:
            for i, passage in todo:
                if self._stop is not None:
                    return
                try:
                    results[i] = await self.convert(passage)
                except MeadowError as err:
                    if self._stop is None:
                        self._stop = err
                    return
                if on_done:
                    on_done()

        await asyncio.gather(*(worker() for _ in range(min(workers, max(len(passages), 1)))))
        if self._stop is not None:
            raise self._stop
        return [r for r in results if r is not None]


def _failure_kind(err: BackendError) -> str:
    if err.status is not None:
        return "rate_limited" if err.status == 429 else f"http_{err.status}"
    text = str(err)
    if "timed out" in text:
        return "timeout"
    if "connection" in text:
        return "connection"
    return "error"


class LazyBackend:
    """A local backend that loads its model on the first request that misses the cache.

    Its identity (model name and weights hash) is known without loading anything, so a build
    whose answers are all cached, ``--replay`` included, never converts or loads the model.
    """

    def __init__(self, identity: str, factory: Callable[[], Backend]):
        self._identity = identity
        self._factory = factory
        self._backend: Backend | None = None
        self._lock: asyncio.Lock | None = None

    @property
    def identity(self) -> str:
        return self._identity

    async def complete(self, messages: list[Message], params: GenParams) -> Completion:
        if self._backend is None:
            self._lock = self._lock or asyncio.Lock()
            async with self._lock:
                if self._backend is None:
                    backend = await asyncio.get_running_loop().run_in_executor(None, self._factory)
                    if backend.identity != self._identity:
                        raise MeadowError(f"model identity changed: {self._identity} != {backend.identity}")
                    self._backend = backend
        return await self._backend.complete(messages, params)

    async def aclose(self) -> None:
        if self._backend is not None:
            await self._backend.aclose()


def make_backend(settings: LLMSettings) -> Backend:
    if settings.backend == "openai":
        from meadow.convert.openai_backend import OpenAIBackend

        return OpenAIBackend(
            settings.model,
            base_url=settings.base_url,
            api_key_env=settings.api_key_env,
            timeout=settings.timeout,
            prefill_as_assistant=settings.prefill_as_assistant,
            structured_output=settings.structured_output,
        )
    from meadow.models import model_identity

    model = settings.model
    if settings.backend == "llama_cpp":

        def llama() -> Backend:
            from meadow.convert.local import LlamaCppBackend

            return LlamaCppBackend(model, seed=settings.seed)  # type: ignore[return-value]

        return LazyBackend(f"llama_cpp:{model_identity(model)}", llama)

    def local() -> Backend:
        from meadow.convert.local import LocalBackend

        return LocalBackend(model, batch_size=settings.batch_size)  # type: ignore[return-value]

    return LazyBackend(f"local:{model_identity(model)}", local)


class SyncRephraser:
    """A Rephraser on its own event loop thread, for synchronous callers. Use as a context manager."""

    def __init__(
        self,
        settings: LLMSettings,
        cache_path: str,
        *,
        backend: Backend | None = None,
        cache: AnswerCache | None = None,
    ):
        """``cache``: an open cache to use instead of opening ``cache_path``."""
        self.settings = settings
        self.cache = cache or AnswerCache(cache_path, replay=settings.replay)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="meadow-llm", daemon=True)
        self._thread.start()
        self.backend = backend or make_backend(settings)
        self.rephraser = Rephraser(self.backend, self.cache, settings, seed=settings.seed)

    @property
    def stats(self) -> ConvertStats:
        return self.rephraser.stats

    def convert(
        self, passages: Sequence[Passage], on_done: Callable[[], None] | None = None
    ) -> list[Record | Drop]:
        future = asyncio.run_coroutine_threadsafe(self.rephraser.convert_many(passages, on_done), self._loop)
        return future.result()

    def close(self) -> None:
        try:
            asyncio.run_coroutine_threadsafe(self.backend.aclose(), self._loop).result(timeout=30)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=30)
            self._loop.close()
            self.cache.close()

    def __enter__(self) -> SyncRephraser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
