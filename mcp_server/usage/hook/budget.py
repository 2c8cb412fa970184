"""The budget guard's fast path (PreToolUse): with no budget configured it returns at once;
otherwise it brings the ledger up to date and runs the real check, mcp_server.usage.guard,
under the plugin's venv, and blocks the call (exit 2) when a cap is reached."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

from mcp_server.ledger import Ledger, ledger_path
from mcp_server.usage.hook.catch_up import catch_up
from mcp_server.usage.hook.project import HookError, log

PLUGIN_ROOT = Path(__file__).resolve().parents[3]
PROJECT_CONFIG = Path(".claude") / "hybrid.yaml"
BUDGET_CATCH_UP_SECONDS = 2.0  # kept under the PreToolUse timeout in hooks.json
GUARD_TIMEOUT_SECONDS = 6.0

GLM_TOOL_PREFIX = "mcp__plugin_hybrid_glm__"
GUARDED_GLM_TOOLS = {GLM_TOOL_PREFIX + name for name in ("write_tests", "implement", "refactor", "write_docs")}
AGENT_TOOLS = {"Agent", "Task"}  # "Task" is the tool's former name; the CLI still reports it so in places
# A workflow's agents fire no PreToolUse for Agent: the guard sees the Workflow launch (run cap)
# and each phase start, an agent's checkpoint_write(status="running") (story and run caps).
PHASE_START = GLM_TOOL_PREFIX + "checkpoint_write"
GUARDED_TOOLS = AGENT_TOOLS | GUARDED_GLM_TOOLS | {"Workflow", PHASE_START}


def budget_configured(root: Path, env: Mapping[str, str]) -> bool:
    """Cheap and conservative: a HYBRID_BUDGET_* variable, or the word in the project config."""
    if any(name.startswith("HYBRID_BUDGET_") and value.strip() for name, value in env.items()):
        return True
    try:
        return b"budget" in (root / PROJECT_CONFIG).read_bytes()
    except OSError:
        return False


def guard_python(env: Mapping[str, str]) -> str | None:
    """An interpreter that has the plugin's dependencies, without ever building one here."""
    preset = env.get("HYBRID_PYTHON", "").strip()
    if preset:
        return preset if os.path.exists(preset) else None
    from mcp_server import launcher  # stdlib only; knows where the MCP server built the venv

    venv_python = launcher.venv_python(launcher.plugin_data_dir(PLUGIN_ROOT) / "venv")
    if venv_python.exists():
        return str(venv_python)
    from importlib.util import find_spec

    if find_spec("yaml") and find_spec("pydantic"):  # a development interpreter
        return sys.executable
    return None


def budget(payload: dict, root: Path, env: Mapping[str, str], raw: bytes) -> int:
    if not budget_configured(root, env):
        return 0
    tool = payload.get("tool_name")
    if tool not in GUARDED_TOOLS:
        return 0
    tool_input = payload.get("tool_input")
    if tool == PHASE_START and not (isinstance(tool_input, dict) and tool_input.get("status") == "running"):
        return 0  # recording a result is never blocked: only starting a phase is
    # The main loop's own spend is otherwise only read at Stop: bring the ledger up to date.
    ledger = Ledger(ledger_path(root))
    try:
        catch_up(ledger, payload, seconds=BUDGET_CATCH_UP_SECONDS)
    except Exception as error:
        log(root, "PreToolUse", "budget", error)
    finally:
        ledger.close()
    python = guard_python(env)
    if python is None:
        raise HookError("budget not checked: the plugin's Python environment is not built yet")
    import subprocess

    child_env = dict(env)
    child_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PLUGIN_ROOT), env.get("PYTHONPATH", "")]))
    child_env.setdefault("CLAUDE_PROJECT_DIR", str(root))
    try:
        done = subprocess.run(
            [python, "-m", "mcp_server.usage.guard"],
            input=raw, capture_output=True, env=child_env, timeout=GUARD_TIMEOUT_SECONDS,
        )
    except subprocess.TimeoutExpired:
        raise HookError(f"budget not checked: the guard took over {GUARD_TIMEOUT_SECONDS:g} s") from None
    message = done.stderr.decode("utf-8", "replace").strip()
    if done.returncode == 2 and message:
        sys.stderr.write(message + "\n")
        return 2
    if done.returncode != 0:
        raise HookError(f"budget not checked: the guard exited {done.returncode}: {message[-300:]}")
    return 0
