"""`meadow build`: recipe -> load -> validate -> exact dedup -> seeded subsample -> outputs.

Each source streams through its loader; every row read is counted as dropped (with its
reason), duplicate, or unique, and unique records compete for the source's ``n`` places
by the seeded hash rank of their id (meadow.build.sample). Exact duplicates are settled against
what is kept, so memory is bounded by the kept records, not by the rows read. With
``near_dedup`` in the recipe, each source's sample holds an oversample margin, and once the
source is read its candidates go through the near-duplicate pass (meadow.quality.near_dedup) down to
``n``.

With ``--workers`` or ``--executor ray`` the loader pass of each source runs in shards on other
processes (meadow.build.shards, meadow.build.executors) and this module merges them; the per-record steps
(``Screen``, ``scan``) are the same code either way, so the outputs are the same bytes.
Rephrasing windows are then spread over the same workers too (meadow.convert.distributed).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import os
import platform
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from tqdm import tqdm

from meadow import __version__, sources
from meadow.build.sample import Sample, content_key, rank
from meadow.build.write import dataset_card, write_json, write_parquet
from meadow.errors import InputError, MeadowError
from meadow.io import atomic_dir, file_info, write_json_file, write_jsonl
from meadow.quality import decontaminate, filters
from meadow.quality.near_dedup import NearDedupIndex
from meadow.records import Passage, Record
from meadow.schemas.outputs import (
    CARD_NAME,
    CONTAMINATION_NAME,
    DROPPED_NAME,
    JSON_NAME,
    MANIFEST_NAME,
    PARQUET_NAME,
    SAMPLES_NAME,
)
from meadow.schemas.recipe import Recipe, load_recipe, resolve_paths
from meadow.schemas.run import RunOptions, run_options
from meadow.sources import Drop

log = logging.getLogger(__name__)

DROP_EXAMPLES = 5
"""How many example locations the manifest keeps per drop reason."""


@dataclass
class SourceStats:
    loader: str
    n: int | str
    inputs: list[dict[str, Any]] = field(default_factory=list)
    read: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    drop_examples: dict[str, list[str]] = field(default_factory=dict)
    duplicates: int = 0
    duplicate_of: Counter[str] = field(default_factory=Counter)
    near_duplicates: int | None = None  # None: the build does no near dedup
    near_duplicate_of: Counter[str] = field(default_factory=Counter)
    near_dedup_short: int = 0  # records short of n because the oversampled candidates ran out
    unique: int = 0
    sampled: int = 0
    seconds: float = 0.0
    llm: dict[str, Any] | None = None  # rephrasing accounting, for sources that yield passages
    base: str = ""  # the folder recipe paths are relative to, with a trailing separator
    dropped_records: dict[str, list[tuple[int, str, dict[str, str]]]] = field(default_factory=dict)
    """reason -> the DROP_EXAMPLES lowest-ranked records dropped for it (for the stats report)."""
    contaminated: Counter[str] | None = None
    """benchmark -> records found in it (None: the build does not decontaminate)."""
    contamination: list[dict[str, Any]] = field(default_factory=list)
    """The lines of contamination.jsonl for this source."""

    def drop(self, d: Drop) -> None:
        self.dropped[d.reason] += 1
        examples = self.drop_examples.setdefault(d.reason, [])
        if len(examples) < DROP_EXAMPLES:
            at = d.where.removeprefix(self.base)  # paths as the recipe gives them
            examples.append(f"{at}: {d.detail}" if d.detail else at)

    def drop_record(
        self, reason: str, record: Record, rank_: int, detail: str = "", *, count: bool = True
    ) -> None:
        """A valid record left out for ``reason`` (a filter, contamination, a near duplicate).

        ``count``: also count it in ``dropped`` (False for kinds counted apart, like near
        duplicates). The examples kept are the lowest-ranked, so they do not depend on row order.
        """
        if count:
            self.dropped[reason] += 1
            examples = self.drop_examples.setdefault(reason, [])
            if len(examples) < DROP_EXAMPLES:
                examples.append(f"{record.id}: {detail}" if detail else record.id)
        kept = self.dropped_records.setdefault(reason, [])
        row = {
            "id": record.id,
            "instruction": record.instruction,
            "input": record.input,
            "output": record.output,
        }
        if detail:
            row["detail"] = detail
        kept.append((rank_, record.id, row))
        kept.sort(key=lambda e: (e[0], e[1]))
        del kept[DROP_EXAMPLES:]

    def reject(self, name: str, verdict: Verdict, record: Record, decon: Any) -> None:
        """Count a record that ``Screen.check`` turned down (a filter, a benchmark question)."""
        if verdict.hit is None:
            self.drop_record(verdict.reason, record, verdict.rank, verdict.detail)
            return
        hit = verdict.hit
        self.drop_record("contaminated", record, verdict.rank, f"{hit.benchmark}:{hit.item_id}")
        if self.contaminated is not None:
            self.contaminated[hit.benchmark] += 1
        self.contamination.append(decon.row(name, record, hit))

    def part_json(self) -> dict[str, Any]:
        """What one shard of the source counted (meadow.build.shards): merged back by ``merge_part``."""
        return {
            "read": self.read,
            "dropped": dict(self.dropped),
            "drop_examples": self.drop_examples,
            "dropped_records": {k: [list(e) for e in v] for k, v in self.dropped_records.items()},
            "contaminated": None if self.contaminated is None else dict(self.contaminated),
            "contamination": self.contamination,
        }

    def merge_part(self, part: dict[str, Any]) -> None:
        """Add a shard's counts. Shards are merged in file order, so the first ``DROP_EXAMPLES``
        examples of a reason are the ones a single pass over the files would have kept."""
        self.read += part["read"]
        self.dropped.update(part["dropped"])
        for reason, examples in part["drop_examples"].items():
            kept = self.drop_examples.setdefault(reason, [])
            kept.extend(examples[: DROP_EXAMPLES - len(kept)])
        for reason, rows in part["dropped_records"].items():
            kept_rows = self.dropped_records.setdefault(reason, [])
            kept_rows.extend((r, i, row) for r, i, row in rows)
            kept_rows.sort(key=lambda e: (e[0], e[1]))
            del kept_rows[DROP_EXAMPLES:]
        if part["contaminated"] is not None and self.contaminated is not None:
            self.contaminated.update(part["contaminated"])
        self.contamination.extend(part["contamination"])

    def dropped_samples(self) -> dict[str, list[dict[str, str]]]:
        return {reason: [row for _, _, row in rows] for reason, rows in sorted(self.dropped_records.items())}

    def to_json(self) -> dict[str, Any]:
        return {
            "loader": self.loader,
            "inputs": self.inputs,
            "read": self.read,
            "dropped": dict(sorted(self.dropped.items())),
            "dropped_total": sum(self.dropped.values()),
            "drop_examples": dict(sorted(self.drop_examples.items())),
            "duplicates": self.duplicates,
            "duplicate_of": dict(sorted(self.duplicate_of.items())),
            **(
                {
                    "near_duplicates": self.near_duplicates,
                    "near_duplicate_of": dict(sorted(self.near_duplicate_of.items())),
                }
                if self.near_duplicates is not None
                else {}
            ),
            **({"near_dedup_short": self.near_dedup_short} if self.near_dedup_short else {}),
            "unique": self.unique,
            "n": self.n,
            "sampled": self.sampled,
            **({} if self.contaminated is None else {"contaminated": _sorted(self.contaminated)}),
            **({"llm": self.llm} if self.llm is not None else {}),
            "seconds": round(self.seconds, 3),
        }


def _sorted(counts: Counter[str]) -> dict[str, int]:
    return dict(sorted(counts.items()))


@dataclass
class BuildResult:
    out_dir: Path
    records: int
    manifest: dict[str, Any]


def build(
    recipe_path: str | Path,
    options: RunOptions | None = None,
    *,
    base_dir: Path | None = None,
    **flags: Any,
) -> BuildResult:
    """Run a recipe and write ``<output_dir>/<name>/``. Returns where, and the manifest.

    ``options`` are the run's flags (meadow.schemas.run.RunOptions); a script may pass them as
    keywords instead (``build(recipe, replay=True)``), validated the same way.

    ``replay``: take every LLM answer from the cache; a miss is an error (no model is asked).

    ``workers`` or ``executor``: read the sources in shards (meadow.build.shards) on ``executor``
    (``local``: a pool of ``workers`` processes; ``ray``: the Ray cluster at ``address``), with
    finished shards kept in ``<output_dir>/.work/<name>/`` so a rerun after a failure redoes only
    the rest; the folder is removed after the build unless ``keep_work``. Without either, the
    sources stream through this process. The outputs are the same byte for byte either way.
    """
    if options is None:
        options = run_options(**flags)
    elif flags:
        raise TypeError(f"build(): pass the flags in options or as keywords, not both ({', '.join(flags)})")
    output_dir, strict, replay, progress = (
        options.output_dir,
        options.strict,
        options.replay,
        options.progress,
    )
    started = time.perf_counter()
    recipe_path = Path(recipe_path)
    recipe = load_recipe(recipe_path)
    if replay:
        recipe.llm = recipe.llm.model_copy(update={"replay": True})
    base = base_dir or Path.cwd()
    out_root = Path(output_dir) if output_dir is not None else Path(recipe.output_dir)
    if not out_root.is_absolute():
        out_root = base / out_root
    final = out_root / recipe.name
    plan = [(n, e, sources.get(e.loader), resolve_paths(n, e, base)) for n, e in recipe.sources.items()]
    for name in recipe.sources:  # a bad filter setting (an unknown language) fails before any reading
        filters.build_filters(recipe.source_filters(name))
    decon = decontaminate.from_recipe(recipe.decontaminate, recipe.benchmarks, base)

    taken: dict[int, str] = {}
    nd = recipe.near_dedup if recipe.near_dedup is not None and recipe.near_dedup.enabled else None
    near = NearDedupIndex(nd.threshold, nd.shingle, nd.num_perm) if nd is not None else None
    stats: dict[str, SourceStats] = {}
    kept: list[Record] = []
    samples: dict[str, Any] = {}
    sharded = _Sharded(recipe, plan, strict, decon, out_root / ".work" / recipe.name, base, progress)
    with _Rephrasing(recipe, base) as rephrasing, contextlib.ExitStack() as stack:
        if options.sharded:
            sharded.start(options)
            stack.callback(sharded.close)
            rephrasing.spread(sharded.runner, sharded.work)
        for name, entry, spec, paths in plan:
            on_error = _on_error(recipe, entry, strict)
            st = SourceStats(loader=entry.loader, n=entry.n, base=f"{base}{os.sep}")
            st.inputs = [_input_info(p, base) for p in paths]
            t0 = time.perf_counter()
            records = _run_source(
                name,
                entry,
                spec,
                paths,
                recipe,
                on_error,
                st,
                taken,
                rephrasing,
                progress,
                decon=decon,
                near=near,
                shards=sharded.parts(name) if sharded.runner is not None else None,
            )
            st.sampled = len(records)
            st.seconds = time.perf_counter() - t0
            stats[name] = st
            kept.extend(records)
            if st.llm is not None:
                samples[name] = st.llm.pop("samples")
            log.debug("%s: read %d, kept %d", name, st.read, st.sampled)
        llm_info = rephrasing.info()

    manifest = _manifest(recipe, recipe_path, stats, len(kept))
    if nd is not None and near is not None:
        manifest["near_dedup"] = {
            **nd.model_dump(mode="json", exclude={"enabled"}),
            **near.info(),
            "seconds": round(near.seconds, 3),
        }
    if llm_info:
        manifest["llm"] = llm_info
    if sharded.info is not None:
        manifest["executor"] = sharded.info
    if decon is not None:
        manifest["decontamination"] = decon.report(lambda p: _input_info(p, base))
    with atomic_dir(final) as tmp:
        write_json(tmp / JSON_NAME, kept)
        write_parquet(tmp / PARQUET_NAME, kept)
        (tmp / CARD_NAME).write_text(dataset_card(manifest, sources.registry()), encoding="utf-8")
        manifest["outputs"] = {
            JSON_NAME: {**file_info(tmp / JSON_NAME), "records": len(kept)},
            PARQUET_NAME: {**file_info(tmp / PARQUET_NAME), "records": len(kept)},
            CARD_NAME: file_info(tmp / CARD_NAME),
        }
        if samples:
            write_json_file(tmp / SAMPLES_NAME, samples)
            manifest["outputs"][SAMPLES_NAME] = file_info(tmp / SAMPLES_NAME)
        dropped = {name: st.dropped_samples() for name, st in stats.items() if st.dropped_records}
        if dropped:
            write_json_file(tmp / DROPPED_NAME, dropped)
            manifest["outputs"][DROPPED_NAME] = file_info(tmp / DROPPED_NAME)
        if decon is not None:
            rows = [row for st in stats.values() for row in st.contamination]
            write_jsonl(tmp / CONTAMINATION_NAME, rows)
            info = file_info(tmp / CONTAMINATION_NAME)
            manifest["outputs"][CONTAMINATION_NAME] = {**info, "records": len(rows)}
        manifest["seconds"] = round(time.perf_counter() - started, 3)
        write_json_file(tmp / MANIFEST_NAME, manifest)
    if sharded.info is not None and not options.keep_work:
        from meadow.build.shards import remove_work

        remove_work(sharded.work)
    return BuildResult(final, len(kept), manifest)


def _on_error(recipe: Recipe, entry: Any, strict: bool) -> str:
    return "fail" if strict else (entry.on_error or recipe.on_error)


class _Sharded:
    """The map phase of a sharded build: every source's shards planned and started at once
    (finished ones from an earlier run reused), their results handed to ``_run_source`` per
    source in recipe order, shard by shard in file order."""

    def __init__(
        self,
        recipe: Recipe,
        plan: list[Any],
        strict: bool,
        decon: decontaminate.Decontaminator | None,
        work: Path,
        base: Path,
        progress: bool,
    ):
        self.recipe, self.plan, self.strict, self.decon = recipe, plan, strict, decon
        self.work, self.base, self.progress = work, base, progress
        self.runner: Any = None
        self.info: dict[str, Any] | None = None

    def start(self, options: RunOptions) -> None:
        from meadow.build import executors, shards

        self.jobs = {
            name: shards.plan(
                name,
                entry,
                paths,
                self.recipe,
                _on_error(self.recipe, entry, self.strict),
                self.decon,
                self.work,
                self.base,
            )
            for name, entry, _, paths in self.plan
        }
        self.done = {(j.source, j.index): shards.finished(j) for js in self.jobs.values() for j in js}
        todo = [j for js in self.jobs.values() for j in js if self.done[(j.source, j.index)] is None]
        total = sum(len(js) for js in self.jobs.values())
        reused = total - len(todo)
        if reused:
            log.info("%d of %d shards reused from %s", reused, total, self.work)
        self.runner = executors.make(options)
        self.results = self.runner.map(todo, self.decon)
        self.info = {**self.runner.info(), "shards": total, "shards_reused": reused}

    def parts(self, name: str) -> Iterator[tuple[dict[str, Any], Iterator[tuple[Any, ...]]]]:
        from meadow.build.shards import rows

        jobs = self.jobs[name]
        bar = tqdm(
            desc=f"{name}: shards", total=len(jobs), disable=None if self.progress else True, leave=False
        )
        try:
            for job in jobs:
                done = self.done[(job.source, job.index)] or next(self.results)
                if self.decon is not None:
                    self.decon.records.update(done["decon_records"])
                    for bench, found in done["found"].items():
                        self.decon.found[bench].update(found)
                bar.update()
                yield done["stats"], rows(job)
        finally:
            bar.close()

    def close(self) -> None:
        if self.runner is not None:
            self.runner.close()


class _Rephrasing:
    """The LLM step, started on the first passage a build meets (most builds never need it)."""

    def __init__(self, recipe: Recipe, base: Path):
        self.settings = recipe.llm
        cache = Path(self.settings.cache)
        self.cache_path = cache if cache.is_absolute() else base / cache
        self._runner: Any = None
        self.executor: Any = None
        self.work: Path | None = None

    def spread(self, executor: Any, work: Path) -> None:
        """Rephrase on ``executor``'s workers (meadow.convert.distributed), chunk caches in ``work``;
        not with a token or dollar budget, which the driver keeps to itself."""
        s = self.settings
        if s.budget_tokens is None and s.budget_usd is None:
            self.executor, self.work = executor, work

    def get(self) -> Any:
        if self._runner is None:
            from meadow.convert.runner import SyncRephraser

            self._runner = SyncRephraser(self.settings, str(self.cache_path))
        return self._runner

    def info(self) -> dict[str, Any] | None:
        if self._runner is None:
            return None
        s = self.settings
        return {
            "backend": self._runner.backend.identity,
            "settings": s.model_dump(mode="json", exclude={"cache", "replay"}),
            "replay": s.replay,
        }

    def __enter__(self) -> _Rephrasing:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._runner is not None:
            self._runner.close()


@dataclass(frozen=True, slots=True)
class Verdict:
    """Why ``Screen.check`` turned a record down: a filter's reason and detail, or a benchmark hit."""

    rank: int
    reason: str
    detail: str = ""
    hit: Any = None  # decontaminate.Hit for 'contaminated'


@dataclass
class Screen:
    """The per-record steps of a source before its sample: the seeded rank, the quality filters,
    then the benchmark check, then the content key for exact dedup.

    The one place these run, whether a source streams through the build (``_run_source``) or a
    shard of it through a worker (meadow.build.shards): both give the same verdicts on the same records.
    Only ``decon``'s counters change (merged back from the shards).
    """

    seed: int
    filters: list[Any]
    decon: decontaminate.Decontaminator | None
    dedup: bool

    @classmethod
    def of(cls, recipe: Recipe, name: str, decon: decontaminate.Decontaminator | None) -> Screen:
        return cls(
            recipe.seed, filters.build_filters(recipe.source_filters(name)), decon, recipe.dedup == "exact"
        )

    def check(self, record: Record) -> tuple[int, int | None] | Verdict:
        """``(rank, content key)`` of a record that may compete for the sample, or why not."""
        rank_ = rank(self.seed, record.id)
        failed = filters.first_failure(self.filters, record)
        if failed is not None:
            return Verdict(rank_, failed[0].reason, failed[1])
        if self.decon is not None and (hit := self.decon.check(record)) is not None:
            return Verdict(rank_, "contaminated", hit=hit)
        key = content_key(record.instruction, record.input, record.output) if self.dedup else None
        return rank_, key


def drop_or_fail(st: SourceStats, item: Drop, name: str, on_error: str) -> None:
    """Count a loader's drop; a malformed unit under ``on_error: fail`` stops the build."""
    if item.malformed and on_error == "fail":
        raise MeadowError(f"{item.where}: {item.detail or item.reason} (source {name!r}; on_error: fail)")
    st.drop(item)


def scan(
    name: str,
    loader: str,
    items: Iterator[Record | Passage | Drop],
    screen: Screen,
    st: SourceStats,
    on_error: str,
    on_record: Callable[[int, int | None, Record], None],
    on_passage: Callable[[int, Passage], None],
    bar: Any = None,
) -> None:
    """The pass over a loader's items: drops counted, records screened, the rest handed on.

    Used for a whole source by the build and for one shard by meadow.build.shards.
    """
    try:
        for item in items:
            st.read += 1
            if bar is not None and not st.read % 1024:
                bar.update(1024)
            if isinstance(item, Drop):
                drop_or_fail(st, item, name, on_error)
            elif isinstance(item, Passage):
                on_passage(rank(screen.seed, item.id), item)
            else:
                verdict = screen.check(item)
                if isinstance(verdict, Verdict):
                    st.reject(name, verdict, item, screen.decon)
                else:
                    on_record(verdict[0], verdict[1], item)
    except InputError as err:
        raise MeadowError(f"{err} (source {name!r}, loader {loader!r})") from None


def _run_source(
    name: str,
    entry: Any,
    spec: sources.SourceSpec,
    paths: list[Path],
    recipe: Recipe,
    on_error: str,
    st: SourceStats,
    taken: dict[int, str],
    rephrasing: _Rephrasing,
    progress: bool,
    decon: decontaminate.Decontaminator | None = None,
    near: NearDedupIndex | None = None,
    shards: Iterable[tuple[dict[str, Any], Iterator[tuple[Any, ...]]]] | None = None,
) -> list[Record]:
    """Stream one source into its sample; ``taken`` maps content kept by earlier sources to them.

    Passages are ranked like records and rephrased lowest rank first, only as many as the
    sample can still take, so a source subsampled to n costs about n LLM answers, not one
    per passage read.

    Every record (read or rephrased) first goes through the source's quality filters, then,
    with ``decon``, the benchmark check; one that fails is dropped (``filter_<name>``,
    ``contaminated``) before it competes for the sample, so neither depends on row order.

    ``shards``: the source was read by workers (meadow.build.shards); each shard's counts and its
    screened records, in file order, replace the loader pass. The sample sees the same records in
    the same order, so the outcome is the same.
    """
    screen = Screen.of(recipe, name, decon)
    if decon is not None:
        st.contaminated = Counter()
    n = None if entry.n == "all" else entry.n
    if near is not None and n is not None and recipe.near_dedup is not None:
        n = math.ceil(n * (1 + recipe.near_dedup.oversample))  # room to replace near duplicates
    sample: Sample[Any] = Sample(n, taken)
    passages: list[tuple[int, str, Passage]] = []

    def admit(rank_: int, key: int | None, id_: str, item: Any) -> None:
        outcome = sample.offer(rank_, id_, key, item)
        if outcome == "duplicate":
            st.duplicates += 1
            st.duplicate_of[taken.get(key, name) if key is not None else name] += 1
        elif outcome == "duplicate_id":
            st.drop(Drop("duplicate_id", id_, "an id already in this source's sample"))

    def offer(item: Record) -> None:
        verdict = screen.check(item)
        if isinstance(verdict, Verdict):
            st.reject(name, verdict, item, decon)
        else:
            admit(verdict[0], verdict[1], item.id, item)

    def drop(item: Drop) -> None:
        drop_or_fail(st, item, name, on_error)

    if shards is None:
        # disable=None: bars only on a terminal, never in logs or CI output.
        bar = tqdm(desc=name, unit=" rows", disable=None if progress else True, leave=False, mininterval=0.5)
        try:
            scan(
                name,
                entry.loader,
                spec.load(paths, entry.parsed_options()),
                screen,
                st,
                on_error,
                lambda rank_, key, item: admit(rank_, key, item.id, item),
                lambda rank_, item: passages.append((rank_, item.id, item)),
                bar,
            )
        finally:
            bar.update(st.read - bar.n)
            bar.close()
    else:
        from meadow.build.shards import as_passage, as_record

        for part, rows in shards:
            st.merge_part(part)
            for row in rows:  # ("r", rank, key, id, fields) or ("p", rank, id, fields)
                if row[0] == "r":
                    admit(row[1], row[2], row[3], row)  # made a Record only if it is kept
                else:
                    passages.append((row[1], row[2], as_passage(row)))
    if passages:
        _rephrase(name, passages, sample, rephrasing, st, offer, drop, progress)
    st.unique = st.read - sum(st.dropped.values()) - st.duplicates
    st.contamination.sort(key=lambda row: (row["id"], row["benchmark"], row["item_id"]))
    entries = sample.ranked()
    if shards is not None:
        entries = [(r, i, k, as_record(x) if isinstance(x, tuple) else x) for r, i, k, x in entries]
    if near is not None:
        entries = _near_dedup(name, entry, entries, near, st, progress)
    for _, _, key, _ in entries:
        if key is not None:
            taken[key] = name
    return sorted((item for _, _, _, item in entries), key=lambda r: r.id)


def _near_dedup(
    name: str,
    entry: Any,
    candidates: list[tuple[int, str, int | None, Record]],
    near: NearDedupIndex,
    st: SourceStats,
    progress: bool,
) -> list[tuple[int, str, int | None, Record]]:
    """Keep the source's candidates (lowest rank first) that are no near duplicate of a record
    kept before, up to its ``n`` (meadow/near_dedup.py); count the others."""
    n = None if entry.n == "all" else entry.n
    t0 = time.perf_counter()
    bar = tqdm(
        desc=f"{name}: near dedup",
        total=len(candidates),
        unit=" records",
        disable=None if progress else True,
        leave=False,
        mininterval=0.5,
    )
    try:
        kept, dups = near.select(name, candidates, n, on_batch=bar.update)
    finally:
        bar.close()
    st.near_duplicates = len(dups)
    for d in dups:
        st.near_duplicate_of[d.of_source] += 1
        detail = f"{d.of_id} ({d.of_source}, Jaccard {d.similarity:.2f})"
        st.drop_record("near_duplicate", d.record, d.rank, detail, count=False)
    left_out = st.unique > len(candidates)  # the sample was full: records ranked below it were not looked at
    st.unique -= len(dups)
    if n is not None and len(kept) < n and left_out:
        # the oversample margin ran out: records ranked below it might have filled the sample
        st.near_dedup_short = n - len(kept)
        log.warning(
            "%s: %d of %d records after near dedup: %d near duplicates among the %d candidates "
            "exhausted the oversample margin (raise near_dedup.oversample)",
            name,
            len(kept),
            n,
            len(dups),
            len(candidates),
        )
    near.seconds += time.perf_counter() - t0
    log.debug("%s: %d near duplicates of %d candidates", name, len(dups), len(candidates))
    return kept


def _rephrase(
    name: str,
    passages: list[tuple[int, str, Passage]],
    sample: Sample[Record],
    rephrasing: _Rephrasing,
    st: SourceStats,
    offer: Any,
    drop: Any,
    progress: bool,
) -> None:
    from meadow.convert.runner import ConvertStats, Rejected

    runner = rephrasing.get()
    runner.rephraser.stats = ConvertStats()  # this source's own accounting
    passages.sort(key=lambda p: (p[0], p[1]))
    bar = tqdm(desc=f"{name}: rephrasing", unit=" passages", disable=None if progress else True, leave=False)
    pos = 0
    try:
        while pos < len(passages):
            room = None if sample.n is None else sample.n - len(sample)
            if room == 0 and not sample.would_admit(passages[pos][0], passages[pos][1]):
                break  # every passage left ranks below the full sample
            size = len(passages) - pos if room is None else max(room, rephrasing.settings.concurrency)
            ranked = passages[pos : pos + size]
            window = [p for _, _, p in ranked]
            pos += len(window)
            if rephrasing.executor is not None:
                results = _rephrase_spread(name, window, rephrasing, runner, bar)
            else:
                results = runner.convert(window, on_done=lambda: _tick(bar, runner.stats))
            for (rank_, _, _), result in zip(ranked, results, strict=True):
                if isinstance(result, Rejected) and result.record is not None:  # kept for review
                    st.drop_record(result.reason, result.record, rank_, result.detail)
                elif isinstance(result, Drop):
                    drop(result)
                else:
                    offer(result)
    finally:
        bar.close()
        stats = runner.stats
        st.llm = {
            **stats.to_json(),
            "not_rephrased": len(passages) - pos,
            "samples": {
                "accepted": [{k: v for k, v in e.items() if k != "_order"} for e in stats.accepted_samples],
                "rejected": [{k: v for k, v in e.items() if k != "_order"} for e in stats.rejected_samples],
            },
        }


def _rephrase_spread(
    name: str, window: list[Passage], rephrasing: _Rephrasing, runner: Any, bar: Any
) -> list[Any]:
    """One window rephrased in chunks on the build's executor (meadow.convert.distributed)."""
    from meadow.convert import distributed

    assert rephrasing.work is not None
    jobs = distributed.plan(
        rephrasing.settings,
        rephrasing.cache_path,
        rephrasing.work,
        name,
        window,
        rephrasing.executor.slots(),
    )
    return distributed.run_window(
        rephrasing.executor, jobs, runner.cache, runner.stats, on_chunk=lambda k: _tick(bar, runner.stats, k)
    )


def _tick(bar: Any, stats: Any, n: int = 1) -> None:
    bar.update(n)
    bar.set_postfix(
        requests=stats.requests,
        cached=stats.cache_hits,
        failed=sum(stats.failed.values()),
        tokens=stats.prompt_tokens + stats.completion_tokens,
        refresh=False,
    )


def _input_info(path: Path, base: Path) -> dict[str, Any]:
    try:
        shown = str(path.relative_to(base))
    except ValueError:
        shown = str(path)
    return {"path": shown, **file_info(path)}


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    # what reads the inputs and what decides drops (language id, near-dedup permutations, n-gram hashes)
    for dist in ("pydantic", "pyarrow", "lxml", "ijson", "py7zr", "py3langid", "datasketch", "numpy"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[dist] = metadata.version(dist)
    return out


def _manifest(recipe: Recipe, recipe_path: Path, stats: dict[str, SourceStats], total: int) -> dict[str, Any]:
    per_source = {name: st.to_json() for name, st in stats.items()}
    return {
        "meadow_version": __version__,
        "recipe_path": str(recipe_path),
        "recipe_sha256": hashlib.sha256(recipe_path.read_bytes()).hexdigest(),
        "recipe": recipe.model_dump(mode="json"),
        "sources": per_source,
        "totals": {
            "read": sum(s.read for s in stats.values()),
            "dropped": sum(sum(s.dropped.values()) for s in stats.values()),
            "duplicates": sum(s.duplicates for s in stats.values()),
            **(
                {"near_duplicates": sum(s.near_duplicates or 0 for s in stats.values())}
                if any(s.near_duplicates is not None for s in stats.values())
                else {}
            ),
            "unique": sum(s.unique for s in stats.values()),
            "records": total,
        },
        "versions": _versions(),
        "platform": sys.platform,
    }
