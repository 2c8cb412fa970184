"""`hybrid demo`: the whole pipeline on the bundled example, in the real Claude Code CLI, no keys.

Two simulated endpoints stand on loopback, started here: a scripted Anthropic model that plays
the orchestrator and the agents (script.py), and a GLM simulator that returns real, working code
for the example's stories (glm_replies.py). The real `claude` runs `/hybrid:pilot` with this
plugin loaded from its folder, so the agents, hooks, MCP tools, checkpoints and ledger all do
their real work. Everything printed says the models were simulated.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from mcp_server.demo.anthropic_sim import AnthropicSim
from mcp_server.demo.chat_sim import ChatSim
from mcp_server.demo.glm_replies import CannedGlm
from mcp_server.demo.script import Review, Scenario, brain_for, label
from mcp_server.errors import HybridError

PLUGIN_ROOT = Path(__file__).resolve().parents[2]
CLI_PACKAGE = "@anthropic-ai/claude-code"
CLI_VERSION = "2.1.330"
# A checkout's pinned CLI (./install). Not in the top folder: Claude Code runs `npm ci` in an
# installed plugin's folder that holds a package-lock.json (docs/install.md).
DEV_CLAUDE = PLUGIN_ROOT / "tools" / "claude-code" / "node_modules" / ".bin" / "claude"
STORIES = ("01.2", "01.3", "01.4")
NPM_TIMEOUT_S = 600
DASHBOARD = Path(".claude") / "hybrid" / "dashboard.html"
SIMULATED = "(simulated models: no Anthropic or GLM API was called)"
ALLOWED_TOOLS = (
    "Agent Bash Read Write Edit Glob Grep Workflow Skill "
    "mcp__plugin_hybrid_glm__write_tests mcp__plugin_hybrid_glm__implement mcp__plugin_hybrid_glm__refactor "
    "mcp__plugin_hybrid_glm__write_docs mcp__plugin_hybrid_glm__checkpoint_read "
    "mcp__plugin_hybrid_glm__checkpoint_write mcp__plugin_hybrid_glm__checkpoint_list"
)
# Keys, endpoints and settings of the user's own that must not reach the simulated session.
SCRUBBED_PREFIXES = ("ANTHROPIC", "CLAUDE", "HYBRID", "ZAI_", "GLM_")


class DemoError(HybridError):
    exit_code = 2  # a --dir that cannot be used, or no Claude Code CLI to run (docs/cli.md)


def demo_scenario() -> Scenario:
    """01.3's first review asks for changes (a shared dict leaks grants between stores);
    01.4 is approved with a minor issue, so P4 refactors it; 01.2 is clean, so P4 is skipped.
    QA measures coverage when this interpreter has coverage.py (the test extra installs it)."""
    return Scenario(
        coverage_python=sys.executable if importlib.util.find_spec("coverage") else None,
        reviews={
            "01.3": [
                Review("REQUEST_CHANGES", 6, ({"severity": "major", "file": "settings/permissions.py", "line": 7,
                                               "text": "grants live in a module-level dict shared by every PermissionStore"},)),
                Review("APPROVED", 9),
            ],
            "01.4": [
                Review("APPROVED", 8, ({"severity": "minor", "file": "settings/org_profile.py", "line": 17,
                                        "text": "update() sets any attribute name it is given; refuse unknown fields"},)),
            ],
        }
    )


# --- Finding the pinned CLI ---------------------------------------------------------------------


def cli_version(binary: str) -> str:
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30,
                             env={**os.environ, "HOME": tempfile.gettempdir()})
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return out.stdout.strip().split(" ")[0]


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "hybrid-orchestrator" / f"claude-code-{CLI_VERSION}"


def find_claude(say=print) -> str:
    """The pinned `claude`: a checkout's (./install), the cache, PATH; else install it with npm."""
    candidates = [DEV_CLAUDE, _cache_dir() / "node_modules" / ".bin" / "claude"]
    on_path = shutil.which("claude")
    for candidate in [*map(str, candidates), *([on_path] if on_path else [])]:
        if Path(candidate).exists() and cli_version(candidate) == CLI_VERSION:
            return candidate
    npm = shutil.which("npm")
    if npm is None:
        if on_path:
            say(f"note: using {on_path} ({cli_version(on_path) or 'unknown version'}); the demo is scripted for {CLI_VERSION}")
            return on_path
        raise DemoError(
            f"the demo needs the Claude Code CLI {CLI_VERSION}, and neither `claude` nor npm is on PATH: "
            "install Node.js 20 or newer with npm (https://nodejs.org), then run `hybrid demo` again"
        )
    target = _cache_dir()
    say(f"installing the Claude Code CLI {CLI_VERSION} with npm into {target} (once)")
    target.mkdir(parents=True, exist_ok=True)
    try:
        done = subprocess.run([npm, "install", "--prefix", str(target), "--no-audit", "--no-fund", f"{CLI_PACKAGE}@{CLI_VERSION}"],
                              capture_output=True, text=True, timeout=NPM_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise DemoError(f"npm did not install {CLI_PACKAGE}@{CLI_VERSION} within {NPM_TIMEOUT_S} s; check the network") from None
    binary = target / "node_modules" / ".bin" / "claude"
    if done.returncode != 0 or not binary.exists():
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise DemoError(f"npm could not install {CLI_PACKAGE}@{CLI_VERSION}: {tail[0]}")
    return str(binary)


# --- The run ------------------------------------------------------------------------------------


def prepare_project(directory: Path) -> Path:
    example = PLUGIN_ROOT / "examples" / "settings-epic"
    if not example.is_dir():
        raise DemoError(f"the example project is missing: {example} (run the demo from the plugin or a checkout)")
    project = directory / "settings-epic"
    if project.exists():
        raise DemoError(f"{project} already exists; pass another --dir")
    shutil.copytree(example, project)
    if shutil.which("git"):  # the reviewer reads the diff
        quiet = {"capture_output": True, "cwd": project}
        subprocess.run(["git", "init", "-q"], **quiet)
        subprocess.run(["git", "add", "-A"], **quiet)
        subprocess.run(["git", "-c", "user.name=demo", "-c", "user.email=demo@example.invalid", "commit", "-qm", "example"], **quiet)
    return project


@dataclass
class SessionRun:
    """One `claude -p` run: its JSON result (the last stdout line), exit code and stderr."""

    result: dict
    returncode: int
    stderr: str


def session_environment(
    home: Path, anthropic_url: str, glm_url: str | None = None, extra: dict[str, str] | None = None
) -> dict[str, str]:
    """A Claude Code session against the simulators, in ``home``. Without ``glm_url`` the plugin's
    MCP server is started as a user's would be (building its own environment)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(SCRUBBED_PREFIXES)}
    env.update(
        HOME=str(home),
        ANTHROPIC_BASE_URL=anthropic_url,
        ANTHROPIC_API_KEY="simulated",
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1",
        DISABLE_TELEMETRY="1",
        # Claude Code runs at most min(16, CPUs - 2) workflow agents at once; a small machine
        # would run the three stories one or two at a time.
        CLAUDE_CODE_WORKFLOW_MAX_CONCURRENT_AGENTS="4",
        # On a busy machine the plugin's MCP server can take longer than Claude Code's default
        # 30 s to connect, and is then dropped for the session; the scripted orchestrator waits
        # for its tools (tool_readiness.py) as long as this lets it connect.
        MCP_TIMEOUT="120000",
    )
    if glm_url:
        env.update(
            ZAI_API_KEY="simulated",
            HYBRID_GLM_BASE_URL=glm_url,
            HYBRID_PYTHON=sys.executable,  # the interpreter running this has every dependency
        )
    env.update(extra or {})
    return env


def run_session(
    claude: str,
    project: Path,
    prompt: str,
    env: dict[str, str],
    *,
    plugin_dir: Path | None = PLUGIN_ROOT,
    allowed_tools: str = ALLOWED_TOOLS,
    timeout_s: float = 1800,
) -> SessionRun:
    """`claude -p <prompt>` in ``project`` with this plugin loaded (``plugin_dir``), headless."""
    command = [claude, "-p", prompt, "--output-format", "json", "--allowedTools", allowed_tools]
    if plugin_dir is not None:
        command += ["--plugin-dir", str(plugin_dir)]
    try:
        done = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise DemoError(f"the Claude Code session did not finish within {timeout_s:g} s (project: {project})") from None
    try:
        result = json.loads(done.stdout.strip().splitlines()[-1]) if done.stdout.strip() else {}
    except ValueError:
        result = {"result": done.stdout[-2000:]}
    return SessionRun(result, done.returncode, done.stderr)


def replies_dir() -> Path:
    return PLUGIN_ROOT / "examples" / "settings-epic.glm"


def main(directory: str | None = None, say=print) -> int:
    base = Path(directory).resolve() if directory else Path(tempfile.mkdtemp(prefix="hybrid-demo-"))
    if (base / "settings-epic").exists():  # before anything is installed or copied
        raise DemoError(f"{base / 'settings-epic'} already exists; pass another --dir")
    claude = find_claude(say)
    base.mkdir(parents=True, exist_ok=True)
    project = prepare_project(base)
    say(f"hybrid demo {SIMULATED}")
    say(f"project: {project}")
    prompt = f"/hybrid:pilot {','.join(STORIES)}"
    say(f"running: claude -p \"{prompt}\" --plugin-dir {PLUGIN_ROOT}")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="hybrid-demo-home-") as home, \
            AnthropicSim(brain_for(demo_scenario()), label) as anthropic, ChatSim(CannedGlm(replies_dir())) as glm:
        run = run_session(claude, project, prompt, session_environment(Path(home), anthropic.base_url, glm.base_url))
    if run.returncode != 0:
        say(f"the Claude Code session failed (exit {run.returncode}): {run.stderr.strip()[-800:]}")
        return 1
    say(f"the session took {time.monotonic() - started:.0f} s")
    from mcp_server.checkpoints import list_checkpoints, status_table
    from mcp_server.demo.narrative import glm_code_requests, story_lines
    from mcp_server.monitor import main as monitor

    listings = list_checkpoints(project, list(STORIES))
    say("")
    say("checkpoints (.claude/checkpoints/):")
    say(status_table(listings))
    say("")
    say("what happened:")
    for line in story_lines([row.checkpoint for row in listings if row.checkpoint], glm_code_requests(project)):
        say(f"  {line}")
    say("")
    say("hybrid report (the tokens are what the simulators reported, priced at list prices):")
    say("")
    where = ["--project", str(project), "--stories", ",".join(STORIES)]
    monitor([*where, "--action", "report"])
    # The dashboard is a file that may be opened on its own: it carries the notice itself.
    monitor([*where, "--note", f"hybrid demo {SIMULATED}", "--action", "dashboard", "--output", str(project / DASHBOARD)])
    say(f"the project, its checkpoints and its ledger (.claude/hybrid/usage.db) stay in {project}")
    return 0
