"""Evaluation results: accuracy with a 95% Wilson interval, the results JSON and a markdown table
like medAlpaca's README (rows: models, columns: benchmarks), with the questions left out of scoring
by reason below it."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from meadow.errors import MeadowError

Z95 = 1.959963984540054
RESULTS_FORMAT = "meadow-eval/1"


def wilson(correct: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a proportion ``correct / n`` (95% by default); (0, 1) for n = 0."""
    if n <= 0:
        return 0.0, 1.0
    p = correct / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    low = 0.0 if correct == 0 else max(0.0, centre - half)
    high = 1.0 if correct == n else min(1.0, centre + half)
    return low, high


def summarize(rows: Iterable[dict[str, Any]], metrics: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Per benchmark: n, and for each metric (a boolean key of the rows) its accuracy and 95% CI."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(row["benchmark"], []).append(row)
    out: dict[str, dict[str, Any]] = {}
    for name in sorted(groups):
        group = groups[name]
        n = len(group)
        entry: dict[str, Any] = {"n": n}
        for metric in metrics:
            correct = sum(bool(r[metric]) for r in group)
            low, high = wilson(correct, n)
            entry[metric] = {"correct": correct, "accuracy": correct / n, "ci95": [low, high]}
        out[name] = entry
    return out


def write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n")


def load_results(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as err:
        raise MeadowError(f"{path}: cannot read: {err.strerror}") from None
    except json.JSONDecodeError as err:
        raise MeadowError(f"{path}:{err.lineno}: invalid JSON: {err.msg}") from None
    if not isinstance(data, dict) or data.get("format") != RESULTS_FORMAT:
        raise MeadowError(f"{path}: not a meadow eval results file (format {RESULTS_FORMAT!r})")
    return data


def cell(entry: dict[str, Any] | None, metric: str) -> str:
    if not entry or metric not in entry:
        return "-"
    m = entry[metric]
    low, high = m["ci95"]
    return f"{100 * m['accuracy']:.1f} ({100 * low:.1f}-{100 * high:.1f}), n={entry['n']}"


def removed_by_benchmark(removed: dict[str, int]) -> dict[str, dict[str, int]]:
    """``{"usmle_step1:image_listed": 27}`` (results.json ``removed``) -> ``{"usmle_step1":
    {"image_listed": 27}}``, sorted."""
    out: dict[str, dict[str, int]] = {}
    for key, count in sorted(removed.items()):
        benchmark, _, reason = key.rpartition(":")
        out.setdefault(benchmark, {})[reason] = count
    return out


def _label(r: dict[str, Any]) -> str:
    c = r["config"]
    return f"{r['model']['name']} ({c['mode']}, {c['shots']}-shot, {c['prompt']})"


def _removed_note(results: Sequence[dict[str, Any]]) -> list[str]:
    """One line naming the questions not scored, by benchmark and reason; one per run when the
    runs differ."""
    notes = []
    for r in results:
        by_benchmark = removed_by_benchmark(r.get("removed") or {})
        text = "; ".join(
            f"{b} " + ", ".join(f"{reason} {n}" for reason, n in reasons.items())
            for b, reasons in by_benchmark.items()
        )
        notes.append((_label(r), text))
    texts = {text for _, text in notes}
    if texts == {""}:
        return []
    if len(texts) == 1:
        return [f"Not scored: {notes[0][1]}."]
    return [f"Not scored in {label}: {text or 'none'}." for label, text in notes]


def markdown_table(results: Sequence[dict[str, Any]], metric: str = "acc") -> str:
    """One row per results file (its model and settings), one column per benchmark; each cell
    ``accuracy% (95% CI), n``. Below, the questions left out of scoring (``removed``: USMLE image
    questions, published slips) by benchmark and reason."""
    benchmarks = sorted({b for r in results for b in r["benchmarks"]})
    header = ["model", *benchmarks]
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join(["---"] + ["---:"] * len(benchmarks)) + "|",
    ]
    for r in results:
        cells = [cell(r["benchmarks"].get(b), metric) for b in benchmarks]
        lines.append("| " + " | ".join([_label(r), *cells]) + " |")
    note = _removed_note(results)
    return "\n".join(lines + ([""] + note if note else [])) + "\n"
