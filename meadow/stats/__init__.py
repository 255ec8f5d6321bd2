"""`meadow stats`: a report on a finished build, read from its manifest and output files.

- ``summary``: the per-source steps (read -> invalid -> filters -> decontamination -> exact and
  near duplicates -> subsample) computed from ``manifest.json``, and the markdown summary table
  the dataset card embeds. Light: imports nothing heavier than the standard library.
- ``collect``: reads the build folder (manifest, dropped samples, contamination hits) and streams
  ``merged_medical_meadow.json`` for token lengths and sample records.
- ``tokens``: token counters (the embedded SmolLM2 tokenizer, another one, or whitespace words).
- ``plots``: the matplotlib charts, as PNG bytes.
- ``report``: the self-contained HTML report, written atomically to ``BUILD_DIR/report/``.
"""

from meadow.stats.summary import Funnel, funnels, steps_not_run, summary_markdown

__all__ = ["Funnel", "funnels", "steps_not_run", "summary_markdown"]
