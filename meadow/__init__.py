"""meadow: build, train on and evaluate Medical Meadow, the medAlpaca instruction data."""

__version__ = "0.1.0"
