"""The report's charts, drawn with matplotlib's object API (no pyplot, no global backend state)
and returned as PNG bytes.

Counts are drawn on a linear axis from 0, so a bar's length is its count, unless they span more
than a factor of 50; then the axis is logarithmic and starts at 1 (not at the smallest count,
where matplotlib would start it: 18 of 20 would look like a third). Either way each bar is
labelled with its count. Log axes take ticks at 1-2-5, then 1-3, then powers of ten, whichever
the axis has room for, written short (``500``, ``1k``, ``20k``), so labels never run together.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import FixedLocator, FuncFormatter, LogLocator, MaxNLocator, NullFormatter

from meadow.stats.summary import STEPS, Funnel

KEPT_COLOR = "#2e7d32"
STEP_COLORS = {
    "invalid": "#9e9e9e",
    "filtered": "#f9a825",
    "contaminated": "#c62828",
    "duplicates": "#1565c0",
    "near_duplicates": "#6a1b9a",
    "subsampled": "#90caf9",
}
WIDTH = 10.0
DPI = 100


def _label(text: str, limit: int = 48) -> str:
    """Plain text for matplotlib: ``$`` would start mathtext."""
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    return text.replace("$", r"\$")


def _height(rows: int, per_row: float = 0.32, extra: float = 1.4) -> float:
    return max(2.4, rows * per_row + extra)


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight", metadata={"Software": None})
    return buf.getvalue()


_THOUSANDS = FuncFormatter(lambda x, _: f"{x:,.0f}" if x >= 1 else f"{x:g}")


def short_number(x: float) -> str:
    """A tick label that stays short: ``500``, ``1k``, ``2.5k``, ``20k``, ``1M``."""
    for size, suffix in ((1e6, "M"), (1e3, "k")):
        if x >= size:
            return f"{x / size:g}{suffix}"
    return f"{x:g}"


def log_ticks(lo: float, hi: float, max_ticks: int) -> list[float]:
    """Ticks for a log axis over [lo, hi]: at 1-2-5 x 10^k, else 1-3, else powers of ten (every
    other one, ...) so that at most ``max_ticks`` are drawn; at least two where the range holds
    two whole numbers."""
    lo, hi = max(lo, 1e-9), max(hi, lo)
    first, last = math.floor(math.log10(lo)), math.ceil(math.log10(hi))

    def within(subs: Sequence[int]) -> list[float]:
        values = (m * 10.0**k for k in range(first, last + 1) for m in subs)
        return [v for v in values if lo <= v <= hi * (1 + 1e-9)]

    for subs in ((1, 2, 5), (1, 3), (1,)):
        ticks = within(subs)
        if len(ticks) <= max_ticks:
            break
    else:
        ticks = ticks[:: math.ceil(len(ticks) / max_ticks)]
    if len(ticks) < 2:
        dense = within(range(1, 10))
        ticks = dense[:: max(1, math.ceil(len(dense) / max_ticks))] or ticks
    return ticks


def _log_x(ax: Axes, max_ticks: int, short: bool = True) -> None:
    """A log x axis over the plotted range, with ``log_ticks`` (call after plotting)."""
    ax.set_xscale("log")
    ax.autoscale_view()
    lo, hi = ax.get_xlim()
    ax.xaxis.set_major_locator(FixedLocator(log_ticks(lo, hi, max_ticks)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: short_number(x)) if short else _THOUSANDS)
    ax.xaxis.set_minor_locator(LogLocator(base=10, subs=range(2, 10)))
    ax.xaxis.set_minor_formatter(NullFormatter())


def _count_axis(ax: Axes, values: Sequence[float], log_ratio: float = 50) -> bool:
    """A linear x axis from 0 with whole-number ticks; where the counts span more than
    ``log_ratio``, a log axis from 1. Each bar is labelled with its count (``_label_bars``).
    True where the axis is logarithmic."""
    positive = [v for v in values if v > 0]
    top = max(positive, default=1)
    log = bool(positive) and top > log_ratio * min(positive)
    if log:
        ax.set_xscale("log")
        ax.set_xlim(1, top * 4)  # from 1: a bar's length is log(count), the same for every chart
        _log_x(ax, max_ticks=8, short=False)
        ax.set_xlim(1, top * 4)
    else:
        ax.set_xlim(0, top * 1.12)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.xaxis.set_major_formatter(_THOUSANDS)
    return log


def _label_bars(ax: Axes, ys: Sequence[float], counts: Sequence[int], fontsize: float = 8) -> None:
    """Each bar's count, just past its end (at 1 for a 0 on a log axis, which has no 0)."""
    low = 1 if ax.get_xscale() == "log" else 0
    for y, count in zip(ys, counts, strict=True):
        ax.annotate(
            f"{count:,}",
            (max(count, low), y),
            xytext=(3, 0),
            textcoords="offset points",
            va="center",
            fontsize=fontsize,
        )


def steps_figure(funnels: Sequence[Funnel]) -> Figure:
    """Per source, a 100% bar split into kept rows and the rows each step removed."""
    fig = Figure(figsize=(WIDTH, _height(len(funnels)) + 0.4), layout="constrained")
    ax = fig.add_subplot()
    names = [_label(f.source) for f in funnels][::-1]
    rows = funnels[::-1]
    left = [0.0] * len(rows)
    parts = [("kept", KEPT_COLOR, [f.kept for f in rows])]
    parts += [(s.label, STEP_COLORS[s.key], [f.removed[s.key] or 0 for f in rows]) for s in STEPS]
    for label, color, counts in parts:
        if not any(counts):
            continue
        shares = [100 * c / f.read if f.read else 0.0 for c, f in zip(counts, rows, strict=True)]
        ax.barh(names, shares, left=left, color=color, label=label, height=0.7)
        left = [a + b for a, b in zip(left, shares, strict=True)]
    for y, f in enumerate(rows):
        ax.text(101, y, f"{f.kept:,} of {f.read:,}", va="center", fontsize=8)
    ax.set_xlim(0, 100)
    ax.set_xlabel("% of rows read")
    ax.set_title("Where each source's rows went")
    fig.legend(loc="outside lower center", ncol=7, fontsize=8)
    return fig


def steps_chart(funnels: Sequence[Funnel]) -> bytes:
    return _png(steps_figure(funnels))


def records_figure(funnels: Sequence[Funnel]) -> Figure:
    """Rows read and kept per source (a log scale from 1 where they span more than 50x)."""
    fig = Figure(figsize=(WIDTH, _height(len(funnels), per_row=0.42)), layout="constrained")
    ax = fig.add_subplot()
    rows = funnels[::-1]
    ys = list(range(len(rows)))
    ax.barh([y + 0.2 for y in ys], [f.read for f in rows], height=0.4, color="#b0bec5", label="read")
    ax.barh([y - 0.2 for y in ys], [f.kept for f in rows], height=0.4, color=KEPT_COLOR, label="kept")
    ax.set_yticks(ys, [_label(f.source) for f in rows])
    log = _count_axis(ax, [v for f in rows for v in (f.read, f.kept)])
    _label_bars(ax, [y + 0.2 for y in ys], [f.read for f in rows], fontsize=7)
    _label_bars(ax, [y - 0.2 for y in ys], [f.kept for f in rows], fontsize=7)
    ax.set_xlabel("records (log scale, from 1)" if log else "records")
    ax.set_title("Records read and kept per source")
    ax.legend(fontsize=8)
    return fig


def records_chart(funnels: Sequence[Funnel]) -> bytes:
    return _png(records_figure(funnels))


def reasons_figure(rows: Sequence[tuple[str, str, str, int]]) -> Figure:
    """One bar per (source, drop reason), coloured by the step the reason belongs to.

    ``rows``: (source, reason, step key, count)."""
    fig = Figure(figsize=(WIDTH, _height(len(rows), per_row=0.28)), layout="constrained")
    ax = fig.add_subplot()
    rows = list(rows)[::-1]
    labels = [_label(f"{source}: {reason}", 64) for source, reason, _, _ in rows]
    ys = list(range(len(rows)))
    ax.barh(ys, [c for *_, c in rows], color=[STEP_COLORS[step] for _, _, step, _ in rows], height=0.7)
    ax.set_yticks(ys, labels, fontsize=8)
    ax.set_ylim(-0.6, len(rows) - 0.4)
    log = _count_axis(ax, [c for *_, c in rows])
    _label_bars(ax, ys, [c for *_, c in rows])
    ax.set_xlabel("rows dropped (log scale, from 1)" if log else "rows dropped")
    ax.set_title("Drop reasons per source")
    steps = {step for _, _, step, _ in rows}
    handles = [Patch(color=STEP_COLORS[s.key], label=s.label) for s in STEPS if s.key in steps]
    ax.legend(handles=handles, fontsize=8, loc="lower right")
    return fig


def reasons_chart(rows: Sequence[tuple[str, str, str, int]]) -> bytes:
    return _png(reasons_figure(rows))


def contamination_figure(per_benchmark: Mapping[str, Mapping[str, int]]) -> Figure:
    """Records removed per benchmark, stacked by the source they came from."""
    benchmarks = list(per_benchmark)[::-1]
    sources = sorted({s for counts in per_benchmark.values() for s in counts})
    fig = Figure(figsize=(WIDTH, _height(len(benchmarks), per_row=0.45)), layout="constrained")
    ax = fig.add_subplot()
    left = [0] * len(benchmarks)
    colors = [f"C{i % 10}" for i in range(len(sources))]
    for source, color in zip(sources, colors, strict=True):
        counts = [per_benchmark[b].get(source, 0) for b in benchmarks]
        ax.barh(
            [_label(b) for b in benchmarks], counts, left=left, color=color, label=_label(source), height=0.6
        )
        left = [a + b for a, b in zip(left, counts, strict=True)]
    _count_axis(ax, left, log_ratio=math.inf)  # stacked: lengths must add up, so never a log axis
    _label_bars(ax, list(range(len(benchmarks))), left)
    ax.set_xlabel("records removed")
    ax.set_title("Contaminated records per benchmark")
    if sources:
        ax.legend(fontsize=8, loc="lower right")
    return fig


def contamination_chart(per_benchmark: Mapping[str, Mapping[str, int]]) -> bytes:
    return _png(contamination_figure(per_benchmark))


def lengths_figure(lengths: Mapping[str, Mapping[str, Sequence[int]]], unit: str) -> Figure:
    """Box plots of instruction, input and output lengths per source (non-empty texts, log scale)."""
    sources = list(lengths)[::-1]
    fields = ("instruction", "input", "output")
    fig = Figure(figsize=(WIDTH + 2, _height(len(sources), per_row=0.36)), layout="constrained")
    axes = fig.subplots(1, len(fields), sharey=True)
    for ax, key in zip(axes, fields, strict=True):
        data = [[v for v in lengths[s][key] if v > 0] for s in sources]
        positions = [i for i, d in enumerate(data) if d]
        if positions:
            ax.boxplot(
                [data[i] for i in positions],
                positions=positions,
                orientation="horizontal",
                widths=0.6,
                showfliers=True,
                flierprops={"markersize": 2, "alpha": 0.4},
                medianprops={"color": KEPT_COLOR},
            )
            _log_x(ax, max_ticks=5)
        ax.set_yticks(range(len(sources)), [_label(s, 32) for s in sources])
        ax.set_ylim(-0.7, len(sources) - 0.3)
        ax.set_title(key)
        ax.set_xlabel(f"{unit} (log scale)")
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle(f"Length per field and source, in {unit} (empty texts left out)")
    return fig


def lengths_chart(lengths: Mapping[str, Mapping[str, Sequence[int]]], unit: str) -> bytes:
    return _png(lengths_figure(lengths, unit))


def total_figure(totals: Sequence[int], unit: str) -> Figure:
    """Histogram of instruction + input + output length over all records measured."""
    import numpy as np

    fig = Figure(figsize=(WIDTH, 3.6), layout="constrained")
    ax = fig.add_subplot()
    values = np.asarray([v for v in totals if v > 0], dtype=float)
    if values.size:
        lo, hi = values.min(), values.max()
        bins = np.geomspace(lo, hi * 1.0001, 40) if hi > lo else np.array([lo * 0.9, hi * 1.1])
        ax.hist(values, bins=bins, color="#5c6bc0")
        _log_x(ax, max_ticks=10)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        for q, style in ((50, "-"), (95, "--"), (99, ":")):
            x = float(np.percentile(values, q))
            ax.axvline(x, color="black", linestyle=style, linewidth=1, label=f"p{q}: {x:,.0f}")
        ax.legend(fontsize=8)
    ax.set_xlabel(f"instruction + input + output, {unit} (log scale)")
    ax.set_ylabel("records")
    ax.set_title("Record length, all sources")
    return fig


def total_chart(totals: Sequence[int], unit: str) -> bytes:
    return _png(total_figure(totals, unit))
