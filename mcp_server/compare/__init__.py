"""`hybrid report --compare A B`: two measured runs of the same stories, side by side.

A and B are project folders (each with its own `.claude/hybrid/usage.db` and
`.claude/checkpoints/`), e.g. the two worktrees of `hybrid ab`; `PATH@RUN_ID` narrows a side to
one run when its ledger records run ids. Each side is read and priced by the monitor, through its
public surface (``mcp_server.monitor``), so a figure here is the figure `hybrid report` shows for
that side.

Modules, each importing only those before it: ``sides`` (a side's folder, ledger, run and
report, read-only) <- ``figures`` (the metrics, the difference and the ratio, and the estimate
against the measured Claude-only cost; pure) <- ``render`` (Markdown and JSON) <- ``cli``.
Nothing is imported here: callers import the module they need.
"""
