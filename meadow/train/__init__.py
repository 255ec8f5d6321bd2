"""Training on a Medical Meadow build: `meadow train` (transformers Trainer + peft + bitsandbytes).

- ``config``: TrainConfig, medAlpaca's train.py flags and defaults (command line and YAML);
- ``data``: records -> prompt -> tokens, labels (train_on_inputs / completion-only), split;
- ``trainer``: model loading (LoRA, 8-bit, 4-bit), Trainer, save, merge;
- ``prompt``: the medAlpaca prompt template (package data).
"""
