#!/bin/sh
# SessionStart. Bash commands get no CLAUDE_PLUGIN_DATA: hand it to them under a name of our own,
# so that bin/hybrid uses the MCP server's venv instead of building a second one.
if [ -n "$CLAUDE_ENV_FILE" ] && [ -n "$CLAUDE_PLUGIN_DATA" ]; then
  quoted=$(printf '%s' "$CLAUDE_PLUGIN_DATA" | sed "s/'/'\\\\''/g")
  printf "export HYBRID_PLUGIN_DATA='%s'\n" "$quoted" >> "$CLAUDE_ENV_FILE"
fi
# Until the plugin's Python environment exists, tell Claude why the glm tools may be missing, so
# that it waits instead of working around them. Silent on every later start.
[ -n "$HYBRID_PYTHON" ] && exit 0  # an interpreter that already has the dependencies
[ -f "${CLAUDE_PLUGIN_DATA:-${CLAUDE_PLUGIN_ROOT:-.}/.hybrid-data}/venv/.hybrid-stamp" ] && exit 0
cat <<'NOTE'
hybrid plugin, first start: its MCP server `glm` is installing its Python dependencies (once, usually under a minute). Until that is done the mcp__plugin_hybrid_glm__* tools are missing. Before a /hybrid command, run `hybrid --help` with Bash: it returns when the install is done, and the tools appear a few seconds later. If they still do not, a new session has them.
NOTE
exit 0
