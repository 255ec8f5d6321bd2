"""The names of the files meadow writes, defined once for every reader and writer.

A build folder (``meadow build``) and a training run folder (``meadow train``).
"""

# --------------------------------------------------------------------------- a build folder

JSON_NAME = "merged_medical_meadow.json"
PARQUET_NAME = "merged_medical_meadow.parquet"
MANIFEST_NAME = "manifest.json"
CARD_NAME = "README.md"
SAMPLES_NAME = "rephrase_samples.json"
DROPPED_NAME = "dropped_samples.json"
"""Per source and reason, the lowest-ranked valid records a filter, decontamination or near-dedup left out."""
CONTAMINATION_NAME = "contamination.jsonl"
"""One JSON line per record found in an evaluation benchmark (meadow.quality.decontaminate)."""

# --------------------------------------------------------------------------- a training run folder

TRAIN_CONFIG_NAME = "meadow_train.json"
"""The validated `meadow train` config of a run, written beside its adapter or weights."""
TRAIN_RUN_NAME = "meadow_train_run.json"
"""Base model identity, data provenance and final metrics of a run (read by `meadow push --model`)."""
MERGED_DIR = "merged"
"""Where a LoRA run with merging writes the merged full weights."""
TRAIN_CARD_NAME = "README.md"
"""The short card of a training run's folder (meadow/train/card.py); `meadow push --model` writes the
full model card in its place."""
TEMPLATE_NAME = "prompt_template.json"
"""The prompt template a run was trained with, copied beside its weights."""
