"""The tables and summaries the commands print: pure functions from data to rich renderables.

Nothing here reads a file or prints; a command passes what the library returned and prints the
result. Lines are strings with rich markup (``[green]ok[/]``), printed with ``highlight=False``.
Library modules are imported inside the functions that need them, so `meadow --help` starts fast.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, Union

from rich.console import RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from meadow.schemas.manifest import Manifest


def build_summary(manifest: Manifest) -> list[RenderableType]:
    """The build's per-source table, the near-dedup line (when it ran), where the time went and the
    drop reasons."""
    near = manifest.near_dedup is not None  # the near-dup column only for builds that ran the step
    table = Table(title="meadow build")
    table.add_column("source", overflow="fold", min_width=12)
    for col in ("read", "dropped", "dups", *(["near dups"] if near else []), "unique", "n", "kept", "s"):
        table.add_column(col, justify="right")
    for name, s in manifest.sources.items():
        table.add_row(
            name,
            f"{s.read:,}",
            f"{s.dropped_total:,}",
            f"{s.duplicates:,}",
            *([f"{s.near_duplicates or 0:,}"] if near else []),
            f"{s.unique:,}",
            str(s.n) + (f" ({s.near_dedup_short:,} short)" if s.near_dedup_short else ""),
            f"{s.sampled:,}",
            f"{s.seconds:.1f}",
        )
    t = manifest.totals
    table.add_row(
        "total",
        f"{t.read:,}",
        f"{t.dropped:,}",
        f"{t.duplicates:,}",
        *([f"{t.near_duplicates or 0:,}"] if near else []),
        f"{t.unique:,}",
        "",
        f"{t.records:,}",
        f"{manifest.seconds:.1f}",
        style="bold",
    )
    out: list[RenderableType] = [table]
    if manifest.near_dedup is not None:
        nd = manifest.near_dedup
        how = f"Jaccard >= {nd['threshold']} on {nd['shingle']}-word shingles"
        out.append(f"near dedup: {nd['seconds']:.1f} s ({how})")
    if manifest.steps:
        spent = ", ".join(f"{step} {seconds:.1f} s" for step, seconds in manifest.steps.items())
        memory = f"; peak memory {manifest.peak_rss_mib:,.0f} MiB" if manifest.peak_rss_mib else ""
        workers = (manifest.executor or {}).get("workers_peak_rss_mib")
        memory += f" (workers {workers:,.0f} MiB)" if workers else ""
        out.append(f"time by step: {spent}{memory}")
    drops = Table(title="dropped rows by reason (manifest.json has example locations)")
    for col in ("source", "reason", "rows"):
        drops.add_column(col, justify="right" if col == "rows" else "left", no_wrap=col != "reason")
    for name, s in manifest.sources.items():
        for reason, count in s.dropped.items():
            drops.add_row(name, reason, f"{count:,}")
    if drops.row_count:
        out.append(drops)
    return out


def sources_table(specs: Mapping[str, Any]) -> Table:
    """The registered loaders (``meadow.sources.registry()``): what each produces, its license."""
    table = Table(title="meadow sources")
    table.add_column("loader", no_wrap=True)
    for col in ("produces", "license", "summary"):
        table.add_column(col)
    for name, spec in specs.items():
        produces = spec.produces + (" (test only)" if spec.test_only else "")
        table.add_row(name, produces, spec.license, spec.summary)
    return table


def loader_data(spec: Any) -> dict[str, Any]:
    """A registered loader (``meadow.sources.SourceSpec``) as JSON data, with its options."""
    options = [
        {
            "name": name,
            "type": type_name(f.annotation),
            "required": f.is_required(),
            "default": None if f.is_required() else f.get_default(call_default_factory=True),
            "description": (f.description or "").replace("``", ""),
        }
        for name, f in spec.options.model_fields.items()
    ]
    return {
        "name": spec.name,
        "produces": spec.produces,
        "test_only": spec.test_only,
        "license": spec.license,
        "summary": spec.summary,
        "citation": spec.citation,
        "per_file": spec.per_file,
        "splittable": spec.splittable,
        "tags": spec.tags,
        "options": options,
        "example": None if spec.test_only else example_entry(spec),
    }


def example_entry(spec: Any) -> str:
    """A recipe entry for loader ``spec``: its options with their defaults (a required one with
    its first allowed value, or ``...``), to copy into a recipe's ``sources:``."""
    lines = [
        f"{spec.name}:",
        f"  loader: {spec.name}",
        f"  path: data/raw/{spec.name}/*  # the raw file(s): a path, a glob, or a list of them",
        "  n: all  # or how many records to keep",
    ]
    if spec.options.model_fields:
        lines.append("  options:")
    for name, f in spec.options.model_fields.items():
        if not f.is_required():
            lines.append(f"    {name}: {_yaml(f.get_default(call_default_factory=True))}")
            continue
        choices = typing.get_args(f.annotation) if typing.get_origin(f.annotation) is Literal else ()
        note = f"required: {' or '.join(map(str, choices))}" if choices else "required"
        lines.append(f"    {name}: {_yaml(choices[0]) if choices else '...'}  # {note}")
    return "\n".join(lines) + "\n"


def loader_detail(spec: Any) -> list[RenderableType]:
    """`meadow sources LOADER`: what it reads and produces, license, options, an example entry."""
    from rich.syntax import Syntax

    out: list[RenderableType] = [
        Text(f"{spec.name}: {spec.summary}", style="bold"),
        Text(f"produces: {spec.produces}" + (" (test only: never training data)" if spec.test_only else "")),
        Text(f"license: {spec.license}"),
        Text(
            f"per-file shards (--workers): {'yes' if spec.per_file else 'no'}; "
            + ("a large file read in spans (--workers): yes; " if spec.splittable else "")
            + f"upstream tags (include_tags/exclude_tags): {'yes' if spec.tags else 'no'}"
        ),
    ]
    if spec.options.model_fields:
        table = Table()
        for col in ("option", "type", "default", "description"):
            table.add_column(col, no_wrap=col != "description", overflow="fold")
        for row in field_rows(spec.options, yaml_style=True):
            table.add_row(*map(Text, row))
        out += [Text("options:"), table]
    else:
        out.append(Text("options: none"))
    if not spec.test_only:
        example = Syntax(example_entry(spec).rstrip(), "yaml", theme="ansi_dark", background_color="default")
        out += [Text("example recipe entry (under sources:):"), example]
    if spec.citation:
        out += [Text("citation:"), Text(spec.citation)]
    return out


def _what(entry: Mapping[str, Any]) -> str:
    if entry["kind"] == "benchmark":
        return f"benchmark {entry['benchmark']}"
    return f"loader {entry['loader']}, n={entry['n']}"


def check_lines(entries: Sequence[Mapping[str, Any]], shown: Callable[[Path], str]) -> list[str]:
    """`meadow check`: per source and benchmark, its first input files (``shown`` formats a path),
    or why it has none."""
    lines = []
    for e in entries:
        if e["missing"] is not None:
            lines.append(f"[red]missing[/] {e['missing']}")
            continue
        paths = e["files"]
        more = f", ... ({len(paths)} files)" if len(paths) > 3 else ""
        lines.append(
            f"[green]ok[/] {e['name']}: {_what(e)}: " + ", ".join(shown(p) for p in paths[:3]) + more
        )
    return lines


def check_data(recipe: Path, entries: Sequence[Mapping[str, Any]], hints: Sequence[str]) -> dict[str, Any]:
    """`meadow check --json`: the recipe, whether every input is there, each entry's files, and
    what to do about the missing ones."""
    data: dict[str, Any] = {"recipe": str(recipe), "valid": True, "sources": {}, "benchmarks": {}}
    data["hints"] = list(hints)
    for e in entries:
        group = data["sources"] if e["kind"] == "source" else data["benchmarks"]
        info = {k: v for k, v in e.items() if k not in ("name", "kind", "files")}
        group[e["name"]] = {**info, "files": [str(p) for p in e["files"]]}
        data["valid"] = data["valid"] and e["missing"] is None
    return data


def convert_table(stats: Mapping[str, Any]) -> Table:
    """Per source: passages, accepted and failed answers, requests, cache hits, tokens, cost."""
    table = Table(title="meadow convert")
    table.add_column("source", overflow="fold", min_width=12)
    for col in ("passages", "accepted", "failed", "requests", "cached", "tokens", "cost $"):
        table.add_column(col, justify="right")
    for name, s in stats.items():
        llm = s.get("llm", {})
        table.add_row(
            name,
            f"{llm.get('passages', 0):,}",
            f"{llm.get('accepted', 0):,}",
            f"{sum(llm.get('failed', {}).values()):,}",
            f"{llm.get('requests', 0):,}",
            f"{llm.get('cache_hits', 0):,}",
            f"{llm.get('prompt_tokens', 0) + llm.get('completion_tokens', 0):,}",
            f"{llm.get('cost_usd', 0):.4f}",
        )
    return table


_FETCH_COLOUR = {"error": "red", "manual": "yellow", "no entry": "yellow", "would download": "cyan"}


def fetch_table(report: Any, dry_run: bool) -> Table:
    """One row per file of a FetchReport (meadow.hub.fetch): its status and size."""
    from meadow.io import human_size

    table = Table(title="meadow fetch" + (" --dry-run" if dry_run else ""))
    table.add_column("source", overflow="fold")
    table.add_column("file", overflow="fold")
    table.add_column("status", no_wrap=True)
    table.add_column("size", justify="right", no_wrap=True)
    table.add_column("detail", overflow="fold")
    for item in report.items:
        style = _FETCH_COLOUR.get(item.status, "green")
        detail = item.detail if item.status not in ("error", "manual", "no entry") else "(see below)"
        table.add_row(
            item.source,
            item.key.split("/", 1)[1] or "-",
            f"[{style}]{item.status}[/]",
            human_size(item.size) if item.size is not None or item.status != "manual" else "",
            detail,
        )
    return table


def fetch_notes(report: Any) -> list[str]:
    """The warnings, the manual downloads (where to get each file) and the errors of a fetch."""
    notes = [f"[yellow]warning:[/] {warning}" for warning in report.warnings]
    notes += [f"[yellow]{item.key}:[/] {item.detail}" for item in report.manual]
    notes += [f"[red]{item.key}:[/] {item.detail}" for item in report.errors]
    return notes


def _download_plan(report: Any) -> tuple[int, int, int]:
    """A dry run's files to download, their known total size, and how many have no known size."""
    sizes = [i.size for i in report.items if i.status == "would download"]
    return len(sizes), sum(s for s in sizes if s is not None), sum(s is None for s in sizes)


def fetch_plan(report: Any) -> str:
    """What a dry run would download: the file count and the total size."""
    from meadow.io import human_size

    files, total, unknown = _download_plan(report)
    sizes = human_size(total) + (f" plus {unknown} of unknown size" if unknown else "")
    if unknown == files:
        sizes = "sizes unknown"
    return f"{files} file(s) to download, {sizes}"


def fetch_data(report: Any) -> dict[str, Any]:
    """A FetchReport as JSON data: each file's status, size and detail; for a dry run, the plan."""
    items = [
        {
            "source": i.source,
            "file": i.key.split("/", 1)[1],
            "status": i.status,
            "size": i.size,
            "detail": i.detail,
            "path": str(i.dest),
        }
        for i in report.items
    ]
    data: dict[str, Any] = {
        "dry_run": report.dry_run,
        "raw_dir": str(report.raw_dir),
        "lock": str(report.lock_path),
        "items": items,
        "warnings": list(report.warnings),
    }
    if report.dry_run:
        files, total, unknown = _download_plan(report)
        data["download"] = {"files": files, "bytes": total, "unknown_sizes": unknown}
    return data


def push_summary(result: Any, repo_id: str, model: bool) -> list[RenderableType]:
    """The files of a dataset or model push (meadow.hub.push / push_model), their total, what of."""
    from meadow.io import human_size

    staged = result.staged
    where = f"datasets/{repo_id}" if not model else f"model {repo_id}"
    table = Table(title=where + (" (not uploaded)" if not result.uploaded else ""))
    table.add_column("path in repo", overflow="fold")
    table.add_column("size", justify="right", no_wrap=True)
    for path, size in staged.files:
        table.add_row(path, human_size(size))
    out: list[RenderableType] = [table]
    total = sum(size for _, size in staged.files)
    if not model:
        configs = ", ".join(f"{c} ({n:,})" for c, n in staged.configs.items())
        out.append(f"{len(staged.files)} files, {human_size(total)}; configs: {configs}")
    else:
        what = {"adapter": "LoRA adapter", "merged": "merged weights", "full": "full weights"}
        out.append(
            f"{len(staged.files)} files, {human_size(total)}: {what[staged.run.kind]} of "
            f"{staged.base.hub_id or staged.base.trained_on}"
        )
    return out


def push_left_out(result: Any) -> list[str]:
    """The files of a model's output folder that a push leaves out, and why."""
    return [f"left out: {path}: {why}" for path, why in result.staged.run.left_out]


def push_done(result: Any, model: bool) -> str:
    """Where the push went (the commit), or where the repository folder was staged."""
    staged = result.staged
    source = staged.run.weights_dir if model else staged.build_dir
    if result.uploaded:
        return f"pushed {source} in one commit: {result.commit_url}"
    return f"staged {source} in {staged.folder}; nothing was uploaded"


def train_table(result: Any) -> Table:
    """Losses, runtime, steps and examples (truncated) of a training run (meadow.train)."""
    table = Table(title="meadow train")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key in ("train_loss", "eval_loss", "train_runtime", "seconds_per_step"):
        if key in result.metrics:
            table.add_row(key, f"{result.metrics[key]:.4g}")
    table.add_row("steps", str(result.global_step))
    for split_name, stats in result.data.items():
        if stats:
            table.add_row(
                f"{split_name} examples (truncated)", f"{stats['examples']:,} ({stats['truncated']:,})"
            )
    return table


def type_name(annotation: Any) -> str:
    """A field's type as a person writes it: ``int``, ``str | None``, ``list[str]``, ``'a' | 'b'``."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation is None or annotation is type(None):
        return "None"
    if origin in (Union, types.UnionType):
        return " | ".join(type_name(a) for a in args)
    if origin is Literal:
        return " | ".join(repr(a) for a in args)
    if origin is typing.Annotated:
        return type_name(args[0])
    if origin is not None:
        return f"{getattr(origin, '__name__', str(origin))}[{', '.join(type_name(a) for a in args)}]"
    return getattr(annotation, "__name__", str(annotation))


def _yaml(value: Any) -> str:
    """``value`` as written in a recipe: ``false``, ``null``, ``[dev, val]``."""
    import yaml

    return yaml.safe_dump(value, default_flow_style=True, width=10**6).removesuffix("\n...\n").strip()


def _default(field: Any, yaml_style: bool) -> str:
    if field.is_required():
        return "required"
    value = field.get_default(call_default_factory=True)
    if yaml_style:
        return _yaml(value)
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    return "''" if value == "" else str(value)


def field_rows(model: Any, yaml_style: bool = False) -> list[tuple[str, str, str, str]]:
    """Each field of a pydantic model: name, type, default (or ``required``), description.
    Defaults as command-line values (``True``, ``q_proj,v_proj``) or, ``yaml_style``, as YAML."""
    return [
        (name, type_name(f.annotation), _default(f, yaml_style), (f.description or "").replace("``", ""))
        for name, f in model.model_fields.items()
    ]


def train_flags(config: Any) -> Panel:
    """`meadow train --help`: every flag of TrainConfig, in typer's panel style."""
    table = Table(box=None, show_header=True, header_style="bold", padding=(0, 1), pad_edge=False)
    for col in ("flag", "type", "default", "description"):
        table.add_column(col, no_wrap=col != "description", overflow="fold")
    table.add_row("--config", "path", "-", "YAML file of these flags (without --); flags override it")
    for name, *cells in field_rows(config):
        table.add_row(f"--{name}", *map(Text, cells))
    title = "Flags: --flag value or --flag=value, - or _ in names, booleans True/False"
    return Panel(table, title=title, title_align="left", border_style="dim")


def diff_summary(diff: Any) -> list[RenderableType]:
    """`meadow diff`: the per-source table of records added, removed and changed, the drop reasons
    whose counts moved, and what else differs (meadow.stats.diff.BuildDiff)."""
    out: list[RenderableType] = [f"{diff.a} -> {diff.b}"]
    if diff.same:
        out.append(f"no difference: the same {diff.records[1]:,} records, the same counts")
        return out
    table = Table(title="meadow diff")
    table.add_column("source", overflow="fold", min_width=12)
    for col in ("kept A", "kept B", "added", "removed", "changed", "unchanged"):
        table.add_column(col, justify="right")
    table.add_column("also")
    for s in diff.sources:
        also = [s.status if s.status != "both" else ""]
        also += ["inputs changed"] if s.inputs_changed else []
        also += ["loader changed"] if s.loader_changed else []
        table.add_row(
            s.source,
            f"{s.kept[0]:,}",
            f"{s.kept[1]:,}",
            f"{s.added:,}",
            f"{s.removed:,}",
            f"{s.changed:,}",
            f"{s.unchanged:,}",
            ", ".join(a for a in also if a),
        )
    table.add_row("total", f"{diff.records[0]:,}", f"{diff.records[1]:,}", "", "", "", "", "", style="bold")
    out.append(table)
    moved = [(s.source, reason, a, b) for s in diff.sources for reason, (a, b) in s.drops.items()]
    if moved:
        drops = Table(title="drop reasons whose counts moved")
        for col in ("source", "reason", "A", "B"):
            drops.add_column(col, justify="right" if col in ("A", "B") else "left")
        for source, reason, a, b in moved:
            drops.add_row(source, reason, f"{a:,}", f"{b:,}")
        out.append(drops)
    for s in diff.sources:
        for kind, ids in s.examples.items():
            out.append(
                f"{s.source}: {kind}: {', '.join(ids)}" + (" ..." if getattr(s, kind) > len(ids) else "")
            )
    if diff.recipe_changed:
        out.append("the recipe differs (manifest.json has each build's resolved recipe)")
    if diff.meadow_version[0] != diff.meadow_version[1]:
        out.append(f"built by meadow {diff.meadow_version[0]} and {diff.meadow_version[1]}")
    return out
