"""The HTML of a `meadow stats` report: one self-contained page, section by section.

Pure functions from the build's numbers (meadow.stats.collect, meadow.stats.summary) to HTML; the
report (meadow.stats.report) writes it with the charts embedded.
"""

from __future__ import annotations

import base64
import html
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from meadow import __version__
from meadow.schemas.manifest import Manifest
from meadow.schemas.outputs import CONTAMINATION_NAME, JSON_NAME
from meadow.stats.collect import FIELDS, Build, RecordScan
from meadow.stats.summary import STEPS, Funnel, steps_run, summary_markdown

CLIP = 600
"""Characters of a record's field shown in a table cell."""


def length_summary(values: Sequence[int]) -> dict[str, Any]:
    import numpy as np

    if not values:
        return {"records": 0}
    a = np.asarray(values)
    return {
        "records": int(a.size),
        "empty": int((a == 0).sum()),
        "min": int(a.min()),
        "median": float(np.median(a)),
        "mean": round(float(a.mean()), 1),
        "p90": float(np.percentile(a, 90)),
        "p99": float(np.percentile(a, 99)),
        "max": int(a.max()),
    }


CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif;
       color: #1b1f24; margin: 0; background: #fafafa; }
main { max-width: 1280px; margin: 0 auto; padding: 1.5rem 2rem 4rem; background: #fff; }
h1 { margin: 0 0 .3rem; font-size: 1.7rem; }
h2 { margin-top: 2.4rem; padding-top: .6rem; border-top: 2px solid #e0e0e0; font-size: 1.3rem; }
h3 { margin-top: 1.6rem; font-size: 1.05rem; }
nav ul { display: flex; flex-wrap: wrap; gap: .3rem 1.2rem; padding: 0; list-style: none; }
a { color: #0b57d0; }
table { border-collapse: collapse; margin: .6rem 0 1rem; font-size: 13px; }
th, td { border: 1px solid #d0d7de; padding: .25rem .5rem; vertical-align: top; text-align: left; }
th { background: #f3f5f7; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.total td { font-weight: 600; background: #f6f8fa; }
td.text { white-space: pre-wrap; overflow-wrap: anywhere; max-width: 34rem; }
td ul { margin: 0; padding-left: 1.1rem; }
td.mono { overflow-wrap: break-word; max-width: 18rem; }
td.mono, code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12px; }
.muted, td.notrun { color: #6e7781; font-style: italic; }
.warn { background: #fff8c5; border: 1px solid #d4a72c; padding: .5rem 1rem; border-radius: 4px; }
figure { margin: 1rem 0; }
figure img { display: block; max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #57606a; font-size: 12px; margin-top: .2rem; }
pre { background: #f6f8fa; padding: .6rem; overflow-x: auto; font-size: 12px; }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: .15rem 1rem; }
dl.meta dt { color: #57606a; } dl.meta dd { margin: 0; }
.clipped { color: #6e7781; }
"""
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


_BREAK_AFTER = re.compile(r"([/_:#.\-]+)")


def _ident(value: Any) -> str:
    """An identifier (loader, reason, record id, path) escaped, with a line-break opportunity
    (``<wbr>``) after each ``/ _ : # . -``: a narrow column wraps it between its parts, never
    inside a word (the cells break words only where one part alone is wider than the column)."""
    return _BREAK_AFTER.sub(r"\1<wbr>", _e(value))


def _num(value: int | float | None) -> str:
    if value is None:
        return '<td class="num muted">–</td>'
    text = f"{value:,}" if isinstance(value, int) else f"{value:,.1f}".removesuffix(".0")
    return f'<td class="num">{text}</td>'


def _text(value: Any, clip: int = CLIP) -> str:
    text = "" if value is None else str(value)
    if len(text) > clip:
        rest = len(text) - clip
        more = f'<span class="clipped"> … ({rest:,} more characters)</span>'
        return f'<td class="text">{_e(text[:clip])}{more}</td>'
    return f'<td class="text">{_e(text)}</td>'


def _table(head: Sequence[str], rows: Iterable[str], num_cols: Iterable[int] = ()) -> str:
    nums = set(num_cols)
    ths = "".join(
        f'<th class="num">{_e(h)}</th>' if i in nums else f"<th>{_e(h)}</th>" for i, h in enumerate(head)
    )
    return f"<table><thead><tr>{ths}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _figure(name: str, images: Mapping[str, tuple[str, bytes]]) -> str:
    if name not in images:
        return ""
    caption, data = images[name]
    uri = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
    return (
        f'<figure><img src="{uri}" alt="{_e(caption)}">'
        f"<figcaption>{_e(caption)} ({_e(name)})</figcaption></figure>"
    )


def _settings(settings: Mapping[str, Any]) -> str:
    if not settings:
        return ""
    shown = []
    for key, value in settings.items():
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        text = text if len(text) <= 120 else text[:119] + "…"
        shown.append(f"{_e(key)} <code>{_e(text)}</code>")
    return "<p>Settings: " + ", ".join(shown) + "</p>"


def _not_run(what: str) -> str:
    return f'<p class="muted">{_e(what)}: not run in this build.</p>'


def page(
    build: Build,
    rows: Sequence[Funnel],
    reasons: Sequence[tuple[str, str, str, int]],
    per_benchmark: Mapping[str, Mapping[str, int]],
    scan: RecordScan,
    tokenizer: str,
    unit: str,
    images: Mapping[str, tuple[str, bytes]],
    warnings: Sequence[str],
) -> str:
    m = build.manifest
    recipe = m.recipe
    name = recipe.get("name") or build.path.name
    sections = [
        ("steps", "Records per source", _steps_section(m, rows, images)),
        ("drops", "Drop reasons", _drops_section(m, reasons, images)),
        ("contamination", "Decontamination", _contamination_section(build, per_benchmark, images)),
        ("duplicates", "Duplicates", _duplicates_section(m)),
        ("lengths", "Lengths", _lengths_section(scan, tokenizer, unit, images)),
        ("samples", "Sample records", _samples_section(build, rows, scan)),
        ("build", "Build", _build_section(m)),
    ]
    nav = "".join(f'<li><a href="#{key}">{_e(title)}</a></li>' for key, title, _ in sections)
    warn = ""
    if warnings:
        items = "".join(f"<li>{_e(w)}</li>" for w in warnings)
        warn = f'<div class="warn"><strong>Check this build:</strong><ul>{items}</ul></div>'
    total = m.totals.records if "totals" in m.model_fields_set else sum(f.kept for f in rows)
    sha = m.recipe_sha256[:16]
    recipe_line = (
        f"<code>{_e(m.recipe_path or '?')}</code> (sha256 <code>{_e(sha)}</code>), "
        f"seed {_e(recipe.get('seed', '?'))}"
    )
    body = "".join(
        f'<section id="{key}"><h2>{_e(title)}</h2>{content}</section>' for key, title, content in sections
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>meadow stats: {_e(name)}</title>
<style>{CSS}</style>
</head>
<body>
<main>
<h1>meadow stats: {_e(name)}</h1>
<p>{_e(recipe.get("description") or "")}</p>
<dl class="meta">
<dt>build</dt><dd><code>{_e(build.path)}</code></dd>
<dt>records</dt><dd>{total:,} from {len(rows)} sources</dd>
<dt>recipe</dt><dd>{recipe_line}</dd>
<dt>built by</dt><dd>meadow {_e(m.meadow_version or "?")}; report by meadow stats {_e(__version__)}</dd>
</dl>
{warn}
<nav><ul>{nav}</ul></nav>
{body}
</main>
</body>
</html>
"""


def _steps_section(m: Manifest, rows: Sequence[Funnel], images: Mapping[str, tuple[str, bytes]]) -> str:
    ran = steps_run(m)
    top = '<tr><th rowspan="2">source</th><th rowspan="2">loader</th><th rowspan="2" class="num">read</th>'
    top += "".join(f'<th colspan="2">{_e(s.label)}</th>' for s in STEPS)
    top += '<th rowspan="2" class="num">n</th><th rowspan="2" class="num">kept</th></tr>'
    sub = "<tr>" + '<th class="num">removed</th><th class="num">left</th>' * len(STEPS) + "</tr>"
    body = []
    for f in rows:
        cells = [f"<td>{_e(f.source)}</td>", f'<td class="mono">{_ident(f.loader)}</td>', _num(f.read)]
        for s, left in zip(STEPS, f.left(), strict=True):
            removed = f.removed[s.key]
            cells.append(
                '<td colspan="2" class="notrun">not run</td>'
                if removed is None
                else _num(removed) + _num(left)
            )
        n = f.n if isinstance(f.n, int) else None
        cells += [_num(n) if n is not None else f"<td class='num'>{_e(f.n)}</td>", _num(f.kept)]
        body.append(f"<tr>{''.join(cells)}</tr>")
    totals = ['<td colspan="2">total</td>', _num(sum(f.read for f in rows))]
    for i, s in enumerate(STEPS):
        if not ran[s.key] and all(f.removed[s.key] is None for f in rows):
            totals.append('<td colspan="2" class="notrun">not run</td>')
        else:
            totals += [_num(sum(f.removed[s.key] or 0 for f in rows)), _num(sum(f.left()[i] for f in rows))]
    totals += ["<td></td>", _num(sum(f.kept for f in rows))]
    body.append(f'<tr class="total">{"".join(totals)}</tr>')
    table = f'<table id="steps-table"><thead>{top}{sub}</thead><tbody>{"".join(body)}</tbody></table>'
    not_run = " (not run in this build)"
    legend = "".join(
        f"<li><strong>{_e(s.label)}</strong>: {_e(s.title)}{'' if ran[s.key] else not_run}</li>"
        for s in STEPS
    )
    md = summary_markdown(m)
    return (
        "<p>Rows of each source, through the build's steps in order: each step's rows removed and rows "
        f"left after it.</p><ul>{legend}</ul>{table}"
        f"{_figure('steps.png', images)}{_figure('records.png', images)}"
        "<details><summary>The summary as markdown (as in the dataset card; also in summary.md)</summary>"
        f"<pre>{_e(md)}</pre></details>"
    )


def _drops_section(
    m: Manifest,
    reasons: Sequence[tuple[str, str, str, int]],
    images: Mapping[str, tuple[str, bytes]],
) -> str:
    if not reasons:
        return "<p>No row was dropped.</p>"
    label = {s.key: s.label for s in STEPS}
    body = []
    for source, reason, step, count in reasons:
        examples = m.sources[source].drop_examples.get(reason) or []
        items = "".join(f"<li>{_e(x)}</li>" for x in examples[:3])
        body.append(
            f"<tr><td>{_e(source)}</td><td class='mono'>{_ident(reason)}</td><td>{_e(label[step])}</td>"
            f"{_num(count)}<td class='text'>{'<ul>' + items + '</ul>' if items else ''}</td></tr>"
        )
    table = _table(["source", "reason", "step", "rows", "examples (where)"], body, num_cols=[3])
    return f"{_figure('drop_reasons.png', images)}{table}"


def _contamination_section(
    build: Build, per_benchmark: Mapping[str, Mapping[str, int]], images: Mapping[str, tuple[str, bytes]]
) -> str:
    m = build.manifest
    if not steps_run(m)["contaminated"]:
        return _not_run("Decontamination against evaluation benchmarks")
    deco = m.decontamination or {}
    parts = []
    parts.append(_settings({k: v for k, v in deco.items() if k != "benchmarks"}))
    benchmarks = deco.get("benchmarks") or {}
    names = list(dict.fromkeys([*benchmarks, *per_benchmark]))
    body = []
    for name in names:
        b = benchmarks.get(name) or {}
        paths = b.get("paths") or []
        paths = paths if isinstance(paths, list) else [paths]
        body.append(
            f"<tr><td>{_e(name)}</td><td>{_e(b.get('kind', ''))}</td>"
            f"<td class='mono text'>{'<br>'.join(_ident(p) for p in paths)}</td>"
            f"{_num(b.get('questions'))}{_num(b.get('hits'))}"
            f"{_num(sum(per_benchmark.get(name, {}).values()))}</tr>"
        )
    if body:
        parts.append(
            _table(
                ["benchmark", "kind", "paths", "questions", "hits", "records removed"],
                body,
                num_cols=[3, 4, 5],
            )
        )
    else:
        parts.append("<p>No benchmark recorded.</p>")
    per_source = [
        f"<tr><td>{_e(source)}</td><td>{_e(bench)}</td>{_num(count)}</tr>"
        for bench, counts in per_benchmark.items()
        for source, count in counts.items()
    ]
    if per_source:
        parts.append("<h3>Records removed per source and benchmark</h3>")
        parts.append(_table(["source", "benchmark", "records"], per_source, num_cols=[2]))
    else:
        parts.append("<p>No record was found in a benchmark.</p>")
    parts.append(_figure("contamination.png", images))
    parts.append("<h3>Contaminated records</h3>")
    if build.contamination_total is None:
        parts.append(f'<p class="muted">This build wrote no {CONTAMINATION_NAME}.</p>')
    elif not build.contamination:
        parts.append(f"<p>{CONTAMINATION_NAME} is empty.</p>")
    else:
        keys = list(dict.fromkeys(k for row in build.contamination for k in row))
        rows = [
            "<tr>" + "".join(_text(_plain(row.get(k)), 300) for k in keys) + "</tr>"
            for row in build.contamination
        ]
        shown = len(build.contamination)
        parts.append(
            f"<p>The first {shown:,} of {build.contamination_total:,} lines of {CONTAMINATION_NAME}.</p>"
            + _table(keys, rows)
        )
    return "".join(parts)


def _plain(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _duplicates_section(m: Manifest) -> str:
    ran = steps_run(m)
    parts = ["<h3>Exact duplicates</h3>"]
    if not ran["duplicates"]:
        parts.append(_not_run("Exact deduplication"))
    else:
        rows = [
            f"<tr><td>{_e(name)}</td><td>{_e(of)}</td>{_num(int(count))}</tr>"
            for name, s in m.sources.items()
            for of, count in s.duplicate_of.items()
        ]
        parts.append(
            _table(["source", "duplicate of a record kept in", "rows"], rows, num_cols=[2])
            if rows
            else "<p>No exact duplicate.</p>"
        )
    parts.append("<h3>Near duplicates</h3>")
    if not ran["near_duplicates"]:
        parts.append(_not_run("Near-duplicate removal"))
        return "".join(parts)
    near = m.near_dedup or {}
    parts.append(_settings({k: v for k, v in near.items() if k != "pairs"}))
    short = any(s.near_dedup_short for s in m.sources.values())
    rows = [
        f"<tr><td>{_e(name)}</td>{_num(s.near_duplicates or 0)}<td>"
        + ", ".join(f"{_e(of)}: {int(c):,}" for of, c in (s.near_duplicate_of or {}).items())
        + "</td>"
        + (_num(s.near_dedup_short or 0) if short else "")
        + "</tr>"
        for name, s in m.sources.items()
    ]
    head = ["source", "near duplicates removed", "of records kept in"]
    head += ["records short of n (oversample margin ran out)"] if short else []
    parts.append(_table(head, rows, num_cols=[1, 3]))
    pairs = near.get("pairs") or {}
    if pairs:
        parts.append("<h3>Near-duplicate pairs (the source kept &lt;- the source of the removed record)</h3>")
        parts.append(
            _table(
                ["sources (kept <- removed)", "rows"],
                [f"<tr><td>{_e(p)}</td>{_num(int(c))}</tr>" for p, c in pairs.items()],
                [1],
            )
        )
    return "".join(parts)


def _lengths_section(
    scan: RecordScan, tokenizer: str, unit: str, images: Mapping[str, tuple[str, bytes]]
) -> str:
    how = (
        f"every record ({scan.measured:,})"
        if scan.every == 1
        else f"1 in {scan.every:,} records of each source ({scan.measured:,} of {scan.records:,})"
    )
    parts = [f"<p>Counted with {_e(tokenizer)}, in {_e(unit)}, on {how} of {JSON_NAME}.</p>"]
    if not scan.measured:
        return parts[0] + "<p>No record to measure.</p>"
    parts.append(_figure("lengths.png", images))
    parts.append(_figure("total_lengths.png", images))
    head = ["source", "field", "records", "empty", "min", "median", "mean", "p90", "p99", "max"]
    body = []
    for source, fields in scan.lengths.items():
        for key in (*FIELDS, "total"):
            values = scan.totals(source) if key == "total" else fields[key]
            s = length_summary(values)
            cells = [_num(s.get(k)) for k in head[2:]]
            body.append(f"<tr><td>{_e(source)}</td><td>{key}</td>{''.join(cells)}</tr>")
    parts.append(_table(head, body, num_cols=range(2, len(head))))
    return "".join(parts)


def _samples_section(build: Build, rows: Sequence[Funnel], scan: RecordScan) -> str:
    parts = []
    names = list(dict.fromkeys([*(f.source for f in rows), *scan.samples]))
    dropped = build.dropped_samples
    if dropped is None:
        parts.append(
            '<p class="muted">This build wrote no dropped_samples.json (no filter, decontamination, '
            "grounding or near-duplicate step dropped a valid record), so only kept records are shown.</p>"
        )
    for source in names:
        parts.append(f"<h3>{_e(source)}</h3>")
        kept = scan.samples.get(source) or []
        if kept:
            body = [
                f"<tr><td class='mono'>{_ident(r.get('id', ''))}</td>"
                + "".join(_text(r.get(k, "")) for k in FIELDS)
                + "</tr>"
                for r in kept
            ]
            parts.append(f"<p>Kept: the first {len(kept)} records.</p>")
            parts.append(_table(["id", *FIELDS], body))
        elif not scan.counts.get(source):
            parts.append("<p class='muted'>No record kept.</p>")
        reasons = (dropped or {}).get(source) or {}
        for reason, records in reasons.items():
            body = [
                f"<tr><td class='mono'>{_ident(r.get('id', ''))}</td>"
                + "".join(_text(r.get(k, "")) for k in (*FIELDS, "detail"))
                + "</tr>"
                for r in records
                if isinstance(r, dict)
            ]
            parts.append(f"<p>Dropped for <code>{_e(reason)}</code>:</p>")
            parts.append(_table(["id", *FIELDS, "detail"], body))
    return "".join(parts)


def _build_section(m: Manifest) -> str:
    parts = []
    if m.outputs:
        body = [
            f"<tr><td class='mono'>{_ident(name)}</td>{_num(o.bytes)}{_num(o.records)}"
            f"<td class='mono'>{_e(o.sha256[:16])}</td></tr>"
            for name, o in m.outputs.items()
        ]
        parts.append(
            "<h3>Outputs</h3>" + _table(["file", "bytes", "records", "sha256"], body, num_cols=[1, 2])
        )
    inputs = [
        f"<tr><td>{_e(name)}</td><td class='mono text'>{_ident(i.path)}</td>{_num(i.bytes)}"
        f"<td class='mono'>{_e(i.sha256[:16])}</td></tr>"
        for name, s in m.sources.items()
        for i in s.inputs
    ]
    if inputs:
        parts.append("<h3>Inputs</h3>" + _table(["source", "file", "bytes", "sha256"], inputs, num_cols=[2]))
    if m.versions:
        parts.append(
            "<h3>Versions</h3><p>"
            + ", ".join(f"{_e(k)} {_e(v)}" for k, v in m.versions.items())
            + (f"; platform {_e(m.platform)}" if m.platform else "")
            + (f"; built in {m.seconds:,} s" if "seconds" in m.model_fields_set else "")
            + "</p>"
        )
    return "".join(parts) or "<p class='muted'>The manifest records no files or versions.</p>"
