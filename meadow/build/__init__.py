"""`meadow build`: a recipe's sources read, screened, sampled, deduplicated and written.

See meadow/build/run.py for the flow; ``build`` is the one entry point.
"""

from meadow.build.run import BuildResult, build

__all__ = ["BuildResult", "build"]
