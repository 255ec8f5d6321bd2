"""`python -m meadow.cli`: the same command line as `meadow` (accelerate launch ... -m meadow.cli)."""

from meadow.cli import app

app()
