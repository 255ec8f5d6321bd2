"""``<raw_dir>/<source>/SOURCE.md``: the license, citation and origin of every raw file of a source.

Written by `meadow fetch` for each source and benchmark it fetched, from the recipe's fetch
entries and what ``sources.lock`` recorded about them.
"""

from __future__ import annotations

from pathlib import Path

from meadow import __version__, sources
from meadow.hub.lock import Lock
from meadow.io import atomic_write_text
from meadow.schemas.benchmark import BenchmarkEntry
from meadow.schemas.fetch import FetchEntry, HfFetch, KaggleFetch, ManualFetch, OsfFetch, UrlFetch
from meadow.schemas.recipe import SourceEntry

SOURCE_CARD = "SOURCE.md"


def write_source_card(folder: Path, name: str, entry: SourceEntry | BenchmarkEntry, lock: Lock) -> None:
    """``<raw_dir>/<source>/SOURCE.md``: license, citation and the origin of every file."""
    if isinstance(entry, BenchmarkEntry):
        what = f"the benchmark `{name}` (kind `{entry.kind}`; evaluation only, never training data)"
        license_, citation = entry.license(), entry.citation()
    else:
        spec = sources.get(entry.loader)
        what = f"the source `{name}` (loader `{entry.loader}`)"
        license_, citation = spec.license, spec.citation
    lines = [
        f"# {name}",
        "",
        f"Raw files of {what}, fetched by meadow {__version__}.",
        "",
        f"**License:** {license_}",
        "",
        "## Files",
        "",
    ]
    for fe in entry.fetch:
        where = fe.destination()
        lines.append(f"- `{where}`: {_describe(fe)}")
        for key, rec in sorted(lock.files.items()):
            if key.startswith(f"{name}/") and rec.get("origin") == fe.origin():
                rev = f", commit {rec['revision']}" if rec.get("revision") else ""
                lines.append(
                    f"  - `{key.split('/', 1)[1]}`: {rec['size']:,} bytes, sha256 `{rec['sha256']}`{rev} "
                    f"(recorded {rec.get('recorded_at', '?')})"
                )
        if fe.license:
            lines.append(f"  - license: {fe.license}")
        if fe.note:
            lines.append(f"  - {fe.note}")
    lines += ["", "## Citation", "", citation.strip() or "(none given)", ""]
    atomic_write_text(folder / SOURCE_CARD, "\n".join(lines))


def _describe(fe: FetchEntry) -> str:
    if isinstance(fe, UrlFetch):
        return f"downloaded from <{fe.url}>"
    if isinstance(fe, HfFetch):
        return (
            f"`{fe.file}` of the Hugging Face {fe.repo_type} `{fe.repo_id}` (<{fe.page()}>), "
            f"revision `{fe.revision}`"
        )
    if isinstance(fe, KaggleFetch):
        return f"`{fe.file}` of the Kaggle dataset `{fe.dataset}` (<{fe.page()}>)"
    if isinstance(fe, OsfFetch):
        return f"`{fe.file}` of the OSF project {fe.project} (<{fe.page()}>)"
    assert isinstance(fe, ManualFetch)
    return f"downloaded by hand from <{fe.url}>" + (f": {fe.instructions}" if fe.instructions else "")
