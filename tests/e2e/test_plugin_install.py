"""The plugin as a user gets it: validated, added as a marketplace, installed, and started.

The installed copy has no Python environment; its MCP server must build one on first start
(in ${CLAUDE_PLUGIN_DATA}) and answer a tool call in the same session.

Both installs start from a working clone: one where `./install` has run, with `.venv` and
`node_modules`. Claude Code copies a local folder whole, so the README's install path is the
repository's git URL, whose clone holds the committed files only.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from mcp_server.demo.run import CLI_VERSION, run_session
from tests.e2e.conftest import clean_copy, session_env
from tests.fakes.fake_anthropic import AnthropicSim, Turn
from tests.fakes.git_http import GitHttpServer, publish
from tests.support import REPO, make_project
from mcp_server.demo.script import Conversation

CHECKPOINT_LIST = "mcp__plugin_hybrid_glm__checkpoint_list"
LEAN_INSTALL_BYTES = 5_000_000
DEV_WEIGHT = 20_000_000  # bytes of stand-in .venv and node_modules in the working clone, each


def test_plugin_validate_strict_passes(claude, tmp_path):
    done = subprocess.run([claude, "plugin", "validate", "--strict", str(REPO)], capture_output=True, text=True,
                          env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}, timeout=120)
    assert done.returncode == 0 and "Validation passed" in done.stdout, done.stdout + done.stderr


def test_always_on_context_stays_small(claude, tmp_path):
    done = subprocess.run([claude, "--plugin-dir", str(REPO), "plugin", "details", "hybrid"], capture_output=True,
                          text=True, env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}, timeout=120)
    line = next(line for line in done.stdout.splitlines() if "Always-on" in line)
    assert int(line.split("~")[1].split()[0]) <= 600, line


def test_the_test_only_cli_pin_is_not_in_the_plugin_top_folder():
    # Claude Code runs `npm ci` in an installed plugin folder that holds a package-lock.json.
    assert not (REPO / "package.json").exists() and not (REPO / "package-lock.json").exists()
    pin = json.loads((REPO / "tools" / "claude-code" / "package.json").read_text())
    assert pin["devDependencies"]["@anthropic-ai/claude-code"] == CLI_VERSION


def working_clone(destination: Path) -> Path:
    """This tree, committed, with what ./install leaves beside it (stand-ins of the same names)."""
    clone = clean_copy(destination)
    git = ["git", "-C", str(clone), "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    subprocess.run([*git, "init", "--quiet"], check=True)
    subprocess.run([*git, "add", "--all"], check=True)
    subprocess.run([*git, "commit", "--quiet", "-m", "clone"], check=True)
    for heavy in (".venv/lib/site-packages.bin", "tools/claude-code/node_modules/claude.bin", "node_modules/x.bin"):
        (clone / heavy).parent.mkdir(parents=True, exist_ok=True)
        (clone / heavy).write_bytes(b"\0" * DEV_WEIGHT)
    assert subprocess.run([*git, "status", "--porcelain"], capture_output=True, text=True).stdout == ""  # all ignored
    return clone


def install(claude: str, home: Path, source: str) -> Path:
    """`claude plugin marketplace add <source>` then `claude plugin install`: the installed copy."""
    home.mkdir(exist_ok=True)
    cli_env = {"HOME": str(home), "PATH": "/usr/local/bin:/usr/bin:/bin"}
    for command in (["plugin", "marketplace", "add", source], ["plugin", "install", "hybrid@hybrid-orchestrator"]):
        done = subprocess.run([claude, *command], capture_output=True, text=True, env=cli_env, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
    return home / ".claude" / "plugins" / "cache" / "hybrid-orchestrator" / "hybrid" / "0.1.0"


def cache_size(home: Path) -> int:
    cache = home / ".claude" / "plugins" / "cache"
    return sum(path.lstat().st_size for path in cache.rglob("*") if path.is_file())


@pytest.fixture
def clone(tmp_path) -> Path:
    return working_clone(tmp_path / "hybrid-orchestrator")


def test_a_local_folder_is_copied_whole_so_the_readme_does_not_install_from_one(claude, tmp_path, clone):
    # Claude Code 2.1.330 copies a local marketplace's plugin folder whole (all but .git) and honours
    # no ignore file: this is why the README installs from the git URL (docs/install.md).
    installed = install(claude, tmp_path / "home", str(clone))
    size = cache_size(tmp_path / "home")
    print(f"plugin cache after marketplace add <working clone folder> + install: {size / 1e6:.1f} MB")
    assert (installed / ".venv").is_dir() and size > 2 * DEV_WEIGHT


def test_a_fresh_clone_of_a_working_clone_installs_lean(claude, tmp_path, clone):
    # The README's way without a git host: clone the clone (committed files only), add that folder.
    fresh = tmp_path / "plugin-source"
    subprocess.run(["git", "clone", "--quiet", "--depth", "1", f"file://{clone}", str(fresh)], check=True)
    install(claude, tmp_path / "home", str(fresh))
    size = cache_size(tmp_path / "home")
    print(f"plugin cache after marketplace add <fresh clone folder> + install: {size / 1e6:.2f} MB")
    assert size <= LEAN_INSTALL_BYTES


def test_marketplace_install_then_a_session_bootstraps_the_server(claude, tmp_path, clone):
    home = tmp_path / "home"
    with GitHttpServer(tmp_path / "git-host") as host:  # stands in for GitHub: git's smart HTTP
        publish(clone, tmp_path / "git-host", "hybrid-orchestrator")
        installed = install(claude, home, f"{host.base_url}/hybrid-orchestrator.git")
    size = cache_size(home)
    print(f"plugin cache after marketplace add <git URL of a working clone> + install: {size / 1e6:.2f} MB")
    assert size <= LEAN_INSTALL_BYTES
    assert (installed / "bin" / "hybrid-mcp").is_file() and not (installed / ".venv").exists()
    assert not (installed / "node_modules").exists() and not (installed / "tools" / "claude-code" / "node_modules").exists()

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
    assert not (installed / ".hybrid-data").exists() and not (clone / ".hybrid-data").exists()
    data = home / ".claude" / "plugins" / "data"
    stamps = list(data.glob("*/venv/.hybrid-stamp"))
    assert len(stamps) == 1, list(data.rglob("*"))[:20]
    assert (project / ".claude" / "checkpoints" / "01.2.yaml").is_file()
