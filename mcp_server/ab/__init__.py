"""`hybrid ab`: the same stories run Claude-only and hybrid, each in its own git worktree of the
project, ending with `hybrid report --compare`; and `hybrid demo --ab`, the same against the
demo's simulators.

Modules, each importing only those before it: ``worktrees`` (the refusals, the worktrees, the
manifest, cleanup) <- ``sessions`` (the two `claude -p` runs, in parallel or one after the
other) <- ``cli`` (`hybrid ab`) and ``demo`` (`hybrid demo --ab`). Below it: ``mcp_server.demo``
(the pinned CLI's finder and its session runner, the simulators) and ``mcp_server.compare``.
Nothing is imported here: callers import the module they need.
"""
