"""Writing a build folder: the medAlpaca JSON, the Parquet, the dataset card and the manifest.

Everything goes into a temporary sibling folder first (meadow.io.atomic_dir); only a complete build
replaces the previous one, so a crash or Ctrl-C never leaves a half-written build where a good one was.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from meadow import sources
from meadow.build.manifest import peak_rss_mib
from meadow.io import atomic_dir, file_info, write_json_file, write_jsonl
from meadow.records import Record
from meadow.schemas.manifest import Manifest, OutputFile
from meadow.schemas.outputs import (
    CARD_NAME,
    CONTAMINATION_NAME,
    DROPPED_NAME,
    JSON_NAME,
    MANIFEST_NAME,
    PARQUET_NAME,
    SAMPLES_NAME,
)


def write_json(path: Path, records: Sequence[Record]) -> None:
    """medAlpaca's format: a JSON array of {instruction, input, output} (+ source, id), 4-space indent."""
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write("[")
        for i, record in enumerate(records):
            f.write(",\n" if i else "\n")
            f.write(json.dumps(record.to_alpaca(), ensure_ascii=False, indent=4))
        f.write("\n]\n")


PARQUET_SCHEMA = pa.schema(
    [(name, pa.string()) for name in ("instruction", "input", "output", "source", "id", "meta")]
)


def write_parquet(path: Path, records: Sequence[Record], batch: int = 10_000) -> None:
    """All columns; ``meta`` as a JSON string so the schema stays fixed across sources.

    Written in row groups of ``batch`` records, so memory holds one batch of columns at a time.
    """
    with pq.ParquetWriter(path, PARQUET_SCHEMA, compression="zstd") as writer:
        for start in range(0, max(len(records), 1), batch):
            chunk = records[start : start + batch]
            columns = {
                "instruction": [r.instruction for r in chunk],
                "input": [r.input for r in chunk],
                "output": [r.output for r in chunk],
                "source": [r.source for r in chunk],
                "id": [r.id for r in chunk],
                "meta": [json.dumps(r.meta, ensure_ascii=False, sort_keys=True) for r in chunk],
            }
            writer.write_table(pa.table(columns, schema=PARQUET_SCHEMA))


def size_category(n: int) -> str:
    for limit, name in (
        (1_000, "n<1K"),
        (10_000, "1K<n<10K"),
        (100_000, "10K<n<100K"),
        (1_000_000, "100K<n<1M"),
        (10_000_000, "1M<n<10M"),
    ):
        if n < limit:
            return name
    return "n>10M"


def dataset_card(manifest: Manifest, specs: dict[str, Any]) -> str:
    """A Hugging Face dataset card (YAML metadata + prose) for the build."""
    from meadow.stats.summary import steps_not_run, summary_markdown

    total = manifest.totals.records
    citations = []
    licenses = {}
    for name, s in manifest.sources.items():
        spec = specs[s.loader]
        licenses[name] = spec.license
        if spec.citation and spec.citation not in citations:
            citations.append(spec.citation)
    table = summary_markdown(manifest, licenses).rstrip("\n")
    not_run = ", ".join(s.label for s in steps_not_run(manifest))
    steps_note = "The columns between `read` and `n` count the rows each step removed, in order"
    steps_note += f" (not run in this build: {not_run})." if not_run else "."
    cites = "\n\n".join(
        f"```bibtex\n{c.strip()}\n```" if c.lstrip().startswith("@") else c.strip() for c in citations
    )
    recipe = manifest.recipe
    return f"""---
license: other
language:
- en
task_categories:
- question-answering
- text-generation
tags:
- medical
- instruction-tuning
- medalpaca
size_categories:
- {size_category(total)}
configs:
- config_name: default
  data_files:
  - split: train
    path: {PARQUET_NAME}
---

# {recipe["name"]}

{recipe.get("description") or "A Medical Meadow build."}

Built by meadow {manifest.meadow_version} from the raw upstream sources with
recipe `{manifest.recipe_path}` (sha256 `{manifest.recipe_sha256[:16]}…`), seed {recipe["seed"]}.
{total:,} records in medAlpaca's format (`instruction`, `input`, `output`, plus `source` and `id`).

**Not for clinical use.** This data trains research models; it contains machine-rephrased and
community-written medical text that can be wrong.

## Sources

{table}

{steps_note} `n` is the recipe's subsample size, `kept` the records in this build.
Every dropped row is counted by reason in `manifest.json`, with the input files' sha256;
`meadow stats` turns it into an HTML report.

## Files

- `{JSON_NAME}`: a JSON array, the file medAlpaca's `train.py` reads.
- `{PARQUET_NAME}`: the same rows with a `meta` column (JSON provenance per row).
- `manifest.json`: counts, drop reasons, input and output hashes, versions, timings.

## Citations

Cite every source you use:

{cites}
"""


def write_build(
    final: Path,
    records: Sequence[Record],
    manifest: Manifest,
    *,
    samples: dict[str, Any],
    dropped: dict[str, Any],
    contamination: list[dict[str, Any]] | None,
    started: float,
) -> None:
    """Write the build folder ``final`` atomically: the data files, the card, the samples of
    rephrased and dropped records, contamination.jsonl (``contamination`` not None: the build
    decontaminated) and, last, the manifest with every output's size and sha256."""
    t0 = time.perf_counter()
    with atomic_dir(final) as tmp:
        write_json(tmp / JSON_NAME, records)
        write_parquet(tmp / PARQUET_NAME, records)
        (tmp / CARD_NAME).write_text(dataset_card(manifest, sources.registry()), encoding="utf-8")
        outputs = {
            JSON_NAME: OutputFile(**file_info(tmp / JSON_NAME), records=len(records)),
            PARQUET_NAME: OutputFile(**file_info(tmp / PARQUET_NAME), records=len(records)),
            CARD_NAME: OutputFile(**file_info(tmp / CARD_NAME)),
        }
        if samples:
            write_json_file(tmp / SAMPLES_NAME, samples)
            outputs[SAMPLES_NAME] = OutputFile(**file_info(tmp / SAMPLES_NAME))
        if dropped:
            write_json_file(tmp / DROPPED_NAME, dropped)
            outputs[DROPPED_NAME] = OutputFile(**file_info(tmp / DROPPED_NAME))
        if contamination is not None:
            write_jsonl(tmp / CONTAMINATION_NAME, contamination)
            info = file_info(tmp / CONTAMINATION_NAME)
            outputs[CONTAMINATION_NAME] = OutputFile(**info, records=len(contamination))
        manifest.outputs = outputs
        manifest.steps = {**(manifest.steps or {}), "write": round(time.perf_counter() - t0, 3)}
        manifest.peak_rss_mib = peak_rss_mib()
        manifest.seconds = round(time.perf_counter() - started, 3)
        write_json_file(tmp / MANIFEST_NAME, manifest.to_json())
