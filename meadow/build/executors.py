"""Where the tasks of a build run: a local process pool or a Ray cluster.

Both executors do one thing: run a function on every job (the shards of meadow.build.shards, the
rephrasing chunks of meadow.convert.distributed), all at once as far as their workers allow, and
hand back the results in job order, so the driver can merge the first source while later ones are
still being read. Neither schedules, queues or retries by hand beyond
what its framework gives:

- ``local``: ``concurrent.futures.ProcessPoolExecutor`` with ``workers`` processes (spawned, so a
  worker starts clean whatever threads the driver runs). A worker killed by the OS breaks the
  pool; the pool is then started again and the shards without a result are submitted again, up
  to ``retries`` times.
- ``ray``: ``ray.remote(max_retries=retries)`` tasks on the cluster at ``address`` (``auto``, a
  ``ray://`` client address, or the head's ``host:port``); Ray itself retries the task of a
  worker that died. Each node must have meadow installed and see the input files and the work
  folder at the same paths (a shared file system), as with any Ray job reading files.

An error raised by a loader (a malformed file under ``on_error: fail``) is not retried: it would
fail again; it is raised in the driver as it would be in a single-process build.
"""

from __future__ import annotations

import logging
import multiprocessing
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Protocol

from meadow.errors import MeadowError
from meadow.schemas.run import RunOptions

log = logging.getLogger(__name__)

RETRIES = 3
"""Times a shard whose worker died is run again."""


class Executor(Protocol):
    kind: str

    def share(self, obj: Any) -> Any:
        """``obj`` as the tasks should receive it (Ray: one copy in the object store for all)."""
        ...

    def call(
        self, fn: Callable[..., Any], args: Sequence[tuple[Any, ...]], names: Sequence[str]
    ) -> Iterator[Any]:
        """Start ``fn(*a)`` for every ``a`` in ``args`` (picklable, ``fn`` importable); yield the
        results in order. ``names`` name the tasks in errors."""
        ...

    def slots(self) -> int:
        """How many tasks run at once."""
        ...

    def info(self) -> dict[str, Any]: ...

    def close(self) -> None: ...


class LocalExecutor:
    kind = "local"

    def __init__(self, workers: int, retries: int = RETRIES):
        if workers < 1:
            raise MeadowError(f"--workers must be at least 1 (got {workers})")
        self.workers = workers
        self.retries = retries
        self._pool: ProcessPoolExecutor | None = None

    def _new_pool(self) -> ProcessPoolExecutor:
        ctx = multiprocessing.get_context("spawn")
        self._pool = ProcessPoolExecutor(self.workers, mp_context=ctx)
        return self._pool

    def share(self, obj: Any) -> Any:
        return obj

    def call(
        self, fn: Callable[..., Any], args: Sequence[tuple[Any, ...]], names: Sequence[str]
    ) -> Iterator[Any]:
        """Start ``fn(*a)`` for every ``a`` in ``args`` on the pool (queued behind any work it
        already has); yield the results in order. ``names`` name the tasks in errors."""
        pool = self._pool or self._new_pool()
        futures: list[Future[Any]] = [pool.submit(fn, *a) for a in args]
        return self._results(fn, args, names, futures)

    def _results(
        self,
        fn: Callable[..., Any],
        args: Sequence[tuple[Any, ...]],
        names: Sequence[str],
        futures: list[Future[Any]],
    ) -> Iterator[Any]:
        broken = 0
        for i in range(len(args)):
            while True:
                try:
                    result = futures[i].result()
                    break
                except BrokenProcessPool:
                    broken += 1
                    if broken > self.retries:
                        raise MeadowError(
                            f"{names[i]}: the worker process died "
                            f"{broken} times (killed, out of memory?); finished work is kept for a rerun"
                        ) from None
                    log.warning("a worker process died; running the unfinished tasks again")
                    self.close()
                    pool = self._new_pool()
                    for k in range(i, len(args)):
                        if not _succeeded(futures[k]):
                            futures[k] = pool.submit(fn, *args[k])
            yield result

    def slots(self) -> int:
        return self.workers

    def info(self) -> dict[str, Any]:
        return {"kind": self.kind, "workers": self.workers}

    def close(self) -> None:
        if self._pool is not None:
            # running shards finish (their markers help a rerun); queued ones are cancelled
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


def _succeeded(f: Future[Any]) -> bool:
    return f.done() and not f.cancelled() and f.exception() is None


class RayExecutor:
    kind = "ray"

    def __init__(self, address: str | None, retries: int = RETRIES):
        try:
            import ray
        except ImportError:
            raise MeadowError("--executor ray needs Ray: pip install 'ray[default]'") from None
        self.address = address or "auto"
        self.retries = retries
        self._ray = ray
        self._owned = not ray.is_initialized()
        if self._owned:
            try:
                ray.init(address=self.address, logging_level=logging.WARNING, log_to_driver=False)
            except (ConnectionError, RuntimeError, ValueError) as err:
                raise MeadowError(f"cannot connect to the Ray cluster at {self.address!r}: {err}") from None
        self._tasks: dict[Callable[..., Any], Any] = {}

    def share(self, obj: Any) -> Any:
        return self._ray.put(obj)

    def call(
        self, fn: Callable[..., Any], args: Sequence[tuple[Any, ...]], names: Sequence[str]
    ) -> Iterator[Any]:
        """Start ``fn(*a)`` as a Ray task for every ``a`` in ``args``; yield the results in order."""
        if fn not in self._tasks:
            self._tasks[fn] = self._ray.remote(max_retries=self.retries, num_cpus=1)(fn)
        refs = [self._tasks[fn].remote(*a) for a in args]
        return self._results(refs)

    def _results(self, refs: list[Any]) -> Iterator[dict[str, Any]]:
        from ray.exceptions import RayTaskError

        for ref in refs:
            try:
                yield self._ray.get(ref)
            except RayTaskError as err:
                cause = getattr(err, "cause", None)
                if isinstance(cause, BaseException):
                    raise cause from None
                raise

    def slots(self) -> int:
        return max(1, int(self._ray.cluster_resources().get("CPU", 1)))

    def info(self) -> dict[str, Any]:
        return {"kind": self.kind, "address": self.address}

    def close(self) -> None:
        if self._owned and self._ray.is_initialized():
            self._ray.shutdown()


def make(options: RunOptions) -> Executor:
    """The executor a build's flags ask for (validated by RunOptions)."""
    if options.executor_kind == "ray":
        return RayExecutor(options.address)
    return LocalExecutor(options.workers or 1)
