"""Where each source's rows went, step by step, from a build's ``manifest.json``.

A build reads rows, drops the malformed or ineligible ones (the loader's reasons), the ones
quality filters reject (``filter_*`` reasons), the ones found in a benchmark (``contaminated*``),
exact duplicates, near duplicates, and keeps a seeded subsample of what is left. Every count
comes from the manifest; steps a build did not run (older builds, recipes without them) are
``None``, shown as "not run", never as 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from meadow.schemas.manifest import Manifest, SourceReport

FILTER_PREFIX = "filter_"
CONTAMINATED_PREFIX = "contaminated"


@dataclass(frozen=True)
class Step:
    key: str
    label: str
    """Short column label."""
    title: str
    """What the step removes."""


STEPS: tuple[Step, ...] = (
    Step("invalid", "invalid", "malformed or invalid rows, and rows the loader's rules exclude"),
    Step("filtered", "filtered", "rows a quality filter rejected (filter_* reasons)"),
    Step("contaminated", "contaminated", "rows found in an evaluation benchmark (decontamination)"),
    Step("duplicates", "duplicates", "exact duplicates of a record kept earlier"),
    Step("near_duplicates", "near duplicates", "near duplicates of a record kept (MinHash)"),
    Step("subsampled", "subsampled out", "unique rows beyond the source's n (seeded subsample)"),
)
STEP_KEYS = tuple(s.key for s in STEPS)


def reason_step(reason: str) -> str:
    """The step a drop reason of ``dropped`` belongs to: invalid, filtered or contaminated."""
    if reason.startswith(FILTER_PREFIX):
        return "filtered"
    if reason.startswith(CONTAMINATED_PREFIX):
        return "contaminated"
    return "invalid"


@dataclass
class Funnel:
    """One source's rows through the steps."""

    source: str
    loader: str
    n: int | str
    read: int
    removed: dict[str, int | None]
    """step key -> rows it removed; None where the build did not run the step."""
    kept: int

    def left(self) -> list[int]:
        """Rows left after each step of STEPS (a step not run leaves them as they were)."""
        out, rows = [], self.read
        for key in STEP_KEYS:
            rows -= self.removed[key] or 0
            out.append(rows)
        return out

    @property
    def consistent(self) -> bool:
        """The steps account for every row read: what is left after the last one is what was kept."""
        return self.left()[-1] == self.kept


def steps_run(manifest: Manifest) -> dict[str, bool]:
    """Which steps this build ran, judged from the manifest (and the recipe it records)."""
    sources = manifest.sources
    recipe = manifest.recipe
    reasons = {r for s in sources.values() for r in s.dropped}
    # A recipe with a `filters` section comes from a meadow whose builds always filter (some
    # filters are on by default); older builds have none.
    recipe_filters = "filters" in recipe or any(
        isinstance(e, Mapping) and e.get("filters") for e in (recipe.get("sources") or {}).values()
    )
    return {
        "invalid": True,
        "filtered": recipe_filters or any(r.startswith(FILTER_PREFIX) for r in reasons),
        "contaminated": manifest.decontamination is not None
        or any(r.startswith(CONTAMINATED_PREFIX) for r in reasons)
        or any(s.contaminated is not None for s in sources.values()),
        "duplicates": recipe.get("dedup", "exact") != "none",
        "near_duplicates": manifest.near_dedup is not None
        or any(s.near_duplicates is not None for s in sources.values()),
        "subsampled": True,
    }


def steps_not_run(manifest: Manifest) -> list[Step]:
    ran = steps_run(manifest)
    return [s for s in STEPS if not ran[s.key]]


def funnel(name: str, s: SourceReport, ran: Mapping[str, bool]) -> Funnel:
    """One source's Funnel from its manifest entry ``s``; ``ran`` from steps_run."""
    by_step = {"invalid": 0, "filtered": 0, "contaminated": 0}
    for reason, count in s.dropped.items():
        by_step[reason_step(reason)] += int(count)
    if not by_step["contaminated"] and s.contaminated:
        # counted per benchmark only (not among the drop reasons)
        by_step["contaminated"] = sum(int(v) for v in s.contaminated.values())
    removed: dict[str, int | None] = {
        **by_step,
        "duplicates": s.duplicates,
        "near_duplicates": s.near_duplicates or 0,
    }
    removed["subsampled"] = max(0, s.read - sum(v or 0 for v in removed.values()) - s.sampled)
    for key in STEP_KEYS:
        if not ran[key] and not removed[key]:
            removed[key] = None
    return Funnel(name, s.loader, s.n, s.read, removed, s.sampled)


def funnels(manifest: Manifest) -> list[Funnel]:
    """Every source's Funnel, in recipe order."""
    ran = steps_run(manifest)
    return [funnel(name, s, ran) for name, s in manifest.sources.items()]


def _cell(value: str) -> str:
    return value.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def summary_markdown(manifest: Manifest, licenses: Mapping[str, str] | None = None) -> str:
    """The per-source summary as a markdown table (plus a total row), as the dataset card shows it.

    Columns: source, loader, read, one per step the build ran (rows removed), n, kept, and with
    ``licenses`` (source name -> license) a license column. Steps not run have no column; see
    steps_not_run for the sentence saying so.
    """
    rows = funnels(manifest)
    ran = steps_run(manifest)
    shown = [s for s in STEPS if ran[s.key] and s.key != "subsampled"]
    head = ["source", "loader", "read", *(s.label for s in shown), "n", "kept"]
    align = ["---", "---", "---:", *("---:" for _ in shown), "---:", "---:"]
    if licenses is not None:
        head.append("license")
        align.append("---")
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(align) + "|"]
    for f in rows:
        cells = [_cell(f.source), f"`{_cell(f.loader)}`" if f.loader else "", f"{f.read:,}"]
        cells += [f"{f.removed[s.key] or 0:,}" for s in shown]
        cells += [f"{f.n:,}" if isinstance(f.n, int) else _cell(str(f.n)), f"{f.kept:,}"]
        if licenses is not None:
            cells.append(_cell(licenses.get(f.source, "")))
        lines.append("| " + " | ".join(cells) + " |")
    total = ["**total**", "", f"**{sum(f.read for f in rows):,}**"]
    total += [f"**{sum(f.removed[s.key] or 0 for f in rows):,}**" for s in shown]
    total += ["", f"**{sum(f.kept for f in rows):,}**"]
    if licenses is not None:
        total.append("")
    lines.append("| " + " | ".join(total) + " |")
    return "\n".join(lines) + "\n"
