"""Training on a Medical Meadow build: `meadow train` (transformers Trainer + peft + bitsandbytes).

- ``config``: TrainConfig, medAlpaca's train.py flags and defaults (command line and YAML);
- ``data``: records -> prompt -> tokens, labels (train_on_inputs / completion-only), split;
- ``schedule``: the run's steps, and warnings for settings that would make it train little or slowly;
- ``trainer``: model loading (LoRA, 8-bit, 4-bit), Trainer, save, merge;
- ``card``: the short README.md of the output folder (and what the Hub card takes from it);
- ``prompt``: the medAlpaca prompt template (package data).
"""
