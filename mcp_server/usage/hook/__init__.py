"""Claude Code hook entry points (hooks/hooks.json -> hooks/record.py -> ``main(action)``).

Actions:
- ``subagent-stop`` (SubagentStop): the agent's transcript, from its cursor, into the ledger.
- ``stop`` / ``session-end`` (Stop, SessionEnd): a catch-up pass over the session's main
  transcript and every subagent transcript, each from its cursor. This picks up the lines a
  subagent wrote after its SubagentStop had run. Stop also catches up the project's other
  recent sessions the ledger knows of, in case one was killed before its own Stop ran.
- ``phase`` (PostToolUse on the checkpoint tool): remembers the phase an agent marked running,
  the attribution fallback for prompts without a ``[story <id> <phase>]`` prefix.
- ``budget`` (PreToolUse on Agent and the GLM tools): the budget guard. With no budget
  configured it returns at once; otherwise it runs mcp_server.usage.guard under the plugin's
  venv and blocks the call (exit 2) when a cap is reached.

A hook never breaks the session: every action returns 0 whatever happens, and logs its own
errors, one line each, to ``<project>/.claude/hybrid/hooks.log`` (never the payload: prompts may
hold secrets); in a project that does not use the plugin, to stderr instead. The one exception
is the guard's deliberate 2.

The modules import one way, each only from those above it:
  project   -- the project root, whether it uses the plugin, hooks.log, payload fields
  plan      -- one transcript: what to read from its cursor, and the writes that follow
  catch_up  -- every transcript of a session, and sessions killed before their Stop
  budget    -- the budget guard's fast path (the real check: mcp_server.usage.guard)
  events    -- the handler of each action, and ``main``
Imports: the standard library, mcp_server.ledger and mcp_server.usage.transcripts only
(tests/test_hooks.py and tests/test_architecture.py check this).
"""

from mcp_server.usage.hook.events import HANDLERS, main

__all__ = ["HANDLERS", "main"]
