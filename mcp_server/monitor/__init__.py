"""hybrid-monitor: cost against Claude-only, quality and a verdict, as Markdown, JSON and HTML.

Modules, top to bottom: ``load`` (the ledger in one SQL pass, the checkpoints, the coverage
files), ``report`` (pure functions: the numbers and the verdict), ``render_md`` and
``dashboard`` (the outputs), ``cli`` (``hybrid-monitor`` and ``hybrid report``).
"""
