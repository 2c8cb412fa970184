"""The plugin as a user gets it: validated, added as a marketplace, installed, and started.

The installed copy has no Python environment; its MCP server must build one on first start
(in ${CLAUDE_PLUGIN_DATA}) and answer a tool call in the same session.
"""

from __future__ import annotations

import json
import subprocess

from mcp_server.demo.run import run_session
from tests.e2e.conftest import clean_copy, session_env
from tests.fakes.fake_anthropic import AnthropicSim, Turn
from tests.support import REPO, make_project
from mcp_server.demo.script import Conversation

CHECKPOINT_LIST = "mcp__plugin_hybrid_glm__checkpoint_list"


def test_plugin_validate_strict_passes(claude, tmp_path):
    done = subprocess.run([claude, "plugin", "validate", "--strict", str(REPO)], capture_output=True, text=True,
                          env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}, timeout=120)
    assert done.returncode == 0 and "Validation passed" in done.stdout, done.stdout + done.stderr


def test_always_on_context_stays_small(claude, tmp_path):
    done = subprocess.run([claude, "--plugin-dir", str(REPO), "plugin", "details", "hybrid"], capture_output=True,
                          text=True, env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}, timeout=120)
    line = next(line for line in done.stdout.splitlines() if "Always-on" in line)
    assert int(line.split("~")[1].split()[0]) <= 600, line


def test_marketplace_install_then_a_session_bootstraps_the_server(claude, tmp_path):
    home, source = tmp_path / "home", clean_copy(tmp_path / "hybrid-orchestrator")
    home.mkdir()
    cli_env = {"HOME": str(home), "PATH": "/usr/local/bin:/usr/bin:/bin"}
    for command in (["plugin", "marketplace", "add", str(source)], ["plugin", "install", "hybrid@hybrid-orchestrator"]):
        done = subprocess.run([claude, *command], capture_output=True, text=True, env=cli_env, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
    cache = home / ".claude" / "plugins" / "cache"
    installed = cache / "hybrid-orchestrator" / "hybrid" / "0.1.0"
    assert (installed / "bin" / "hybrid-mcp").is_file() and not (installed / ".venv").exists()
    # The CLI copies the folder whole and runs `npm ci` where a package-lock.json is (docs/install.md).
    size = sum(path.lstat().st_size for path in cache.rglob("*") if path.is_file())
    print(f"plugin cache after marketplace add + install from a clean clone: {size / 1e6:.1f} MB")

    first_requests: list[str] = []
    missing = "No such tool available"

    def brain(body):
        talk = Conversation.of(body)
        if not talk.calls:
            first_requests.append(json.dumps(body.get("messages"), ensure_ascii=False))
            # bin/hybrid is on the Bash tool's PATH; it waits for the venv the MCP server is building.
            return Turn(tool_calls=(("Bash", {"command": "hybrid status 01.2", "description": "status", "timeout": 600_000}),))
        name, _, result = talk.calls[-1]
        listings = [call for call in talk.calls if call[0] == CHECKPOINT_LIST]
        if name == CHECKPOINT_LIST and missing not in result:
            return Turn(text="\n".join(["status:", talk.calls[0][2], "listed:", result]))
        if name == CHECKPOINT_LIST and len(listings) < 20:  # the server connects seconds after the build
            return Turn(tool_calls=(("Bash", {"command": "python3 -c 'import time; time.sleep(3)'",
                                               "description": "wait"}),))
        if name == CHECKPOINT_LIST:
            return Turn(text="listed: " + result)
        return Turn(tool_calls=((CHECKPOINT_LIST, {"stories": "01.2"}),))

    project = make_project(tmp_path / "project")
    with AnthropicSim(brain) as anthropic:
        # No HYBRID_PYTHON: the installed copy must build its own environment. Claude Code does not
        # wait for MCP servers before the first turn, and stops one that has not connected within
        # MCP_TIMEOUT (30 s by default); a first build can take longer, as docs/install.md says.
        env = session_env(home, anthropic.base_url, MCP_TIMEOUT="600000")
        run = run_session(claude, project, "list the stories", env,
                          plugin_dir=None, allowed_tools=f"{CHECKPOINT_LIST} Bash", timeout_s=600)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "first start: its MCP server `glm` is installing" in first_requests[0]  # the SessionStart note
    status, listed = run.result["result"].split("listed:")
    assert "01.2" in listed and "P1 ux-designer" in listed, run.result
    assert "01.2   User Roles" in status and "P1 ux-designer" in status, status
    # bin/hybrid (Claude Code puts the marketplace's copy on the Bash PATH) found the venv the MCP
    # server built, through the SessionStart hook's HYBRID_PLUGIN_DATA: no second one.
    assert not (installed / ".hybrid-data").exists() and not (source / ".hybrid-data").exists()
    data = home / ".claude" / "plugins" / "data"
    stamps = list(data.glob("*/venv/.hybrid-stamp"))
    assert len(stamps) == 1, list(data.rglob("*"))[:20]
    assert (project / ".claude" / "checkpoints" / "01.2.yaml").is_file()
