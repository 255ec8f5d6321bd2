"""Training on a Medical Meadow build (transformers Trainer / TRL + peft).

So far this package holds the medAlpaca prompt template (``meadow.train.prompt``); the
`meadow train` command is not part of this release yet.
"""
