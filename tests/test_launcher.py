"""The plugin launcher: builds its venv once, reuses it without pip, rebuilds on a new pyproject."""

import os
import signal
import time
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mcp_server import launcher
from tests.support import REPO


def plugin_copy(tmp_path: Path) -> Path:
    """What `claude plugin install` leaves: the repo's files, no venv."""
    copy = tmp_path / "plugin"
    shutil.copytree(REPO, copy, ignore=shutil.ignore_patterns(".venv", "node_modules", ".git", "__pycache__", ".pytest_cache", ".hypothesis", "*.egg-info", ".hybrid-data"))
    return copy


def run_cli(copy: Path, data: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "HYBRID_PYTHON", "VIRTUAL_ENV")}
    environ.update(CLAUDE_PLUGIN_DATA=str(data), **env)
    # The system python3, as Claude Code would find it on PATH; never the test venv's.
    return subprocess.run([shutil.which("python3", path="/usr/local/bin:/usr/bin:/bin") or "python3", str(copy / "bin" / "hybrid"), *args],
                          capture_output=True, text=True, env=environ, timeout=600)


def test_first_start_builds_the_venv_and_later_starts_reuse_it(tmp_path):
    copy, data = plugin_copy(tmp_path), tmp_path / "data"
    first = run_cli(copy, data, "--help")
    assert first.returncode == 0, first.stderr
    assert "installing Python dependencies" in first.stderr
    assert (data / "venv" / launcher.STAMP).is_file()
    second = run_cli(copy, data, "--help")
    assert second.returncode == 0 and "installing" not in second.stderr
    assert "usage: hybrid" in second.stdout


def test_a_failed_bootstrap_prints_one_clear_line(tmp_path):
    copy, data = plugin_copy(tmp_path), tmp_path / "data"
    pyproject = copy / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"httpx>=0.27"', '"httpx>=0.27 ;; not a requirement"'))
    result = run_cli(copy, data, "--help")
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.startswith("hybrid: could not")]
    assert len(lines) == 1 and "bootstrap.log" in lines[0]
    assert not (data / "venv" / launcher.STAMP).exists()


def test_stamp_decides_rebuilds(tmp_path, monkeypatch):
    root, data = tmp_path / "plugin", tmp_path / "data"
    root.mkdir()
    (root / "pyproject.toml").write_text('[project]\nname = "x"\ndependencies = []\n')
    monkeypatch.setenv("CLAUDE_PLUGIN_DATA", str(data))
    builds = []

    def fake_build(root_, venv, log):
        builds.append(venv)
        (venv / "bin").mkdir(parents=True)
        (venv / "bin" / "python").write_text("")

    monkeypatch.setattr(launcher, "_build", fake_build)
    launcher.build_locked(root)
    launcher.build_locked(root)
    assert len(builds) == 1
    (root / "pyproject.toml").write_text('[project]\nname = "x"\ndependencies = ["pyyaml"]\n')
    launcher.build_locked(root)
    assert len(builds) == 2


def _fake_installs(monkeypatch, fails_with: str | None) -> list[list[str]]:
    """launcher._run replaced: records each command, and fails an install naming ``fails_with``."""
    commands = []

    def fake_run(command, log):
        commands.append(command)
        if fails_with and any(part.startswith(fails_with) for part in command):
            raise launcher.BootstrapError(f"no wheel for {fails_with}")

    monkeypatch.setattr(launcher, "_run", fake_run)
    monkeypatch.setattr(launcher.shutil, "which", lambda name: None)  # pip, not uv
    return commands


@pytest.mark.parametrize("fails_with", [None, "jsonschema-rs"])
def test_the_build_installs_the_fast_extra_and_does_without_it_when_it_fails(tmp_path, monkeypatch, fails_with):
    root = tmp_path / "plugin"
    root.mkdir()
    (root / "pyproject.toml").write_text(
        '[project]\nname = "x"\ndependencies = ["pyyaml"]\n[project.optional-dependencies]\nfast = ["jsonschema-rs>=0.30"]\n'
    )
    commands = _fake_installs(monkeypatch, fails_with)
    launcher._build(root, tmp_path / "venv", tmp_path / "bootstrap.log")
    installs = [command[command.index("install") + 1:] for command in commands if "install" in command]
    tail = [part for part in installs[0] if not part.startswith("-")]
    assert tail == ["pyyaml", "jsonschema-rs>=0.30"]
    if fails_with is None:
        assert len(installs) == 1
    else:
        assert [part for part in installs[1] if not part.startswith("-")] == ["pyyaml"]
        assert "installing without it" in (tmp_path / "bootstrap.log").read_text()


def test_a_failed_plain_install_still_fails(tmp_path, monkeypatch):
    root = tmp_path / "plugin"
    root.mkdir()
    (root / "pyproject.toml").write_text('[project]\nname = "x"\ndependencies = ["pyyaml"]\n')
    _fake_installs(monkeypatch, "pyyaml")
    with pytest.raises(launcher.BootstrapError):
        launcher._build(root, tmp_path / "venv", tmp_path / "bootstrap.log")


def test_hybrid_python_skips_the_bootstrap(tmp_path):
    copy, data = plugin_copy(tmp_path), tmp_path / "data"
    result = run_cli(copy, data, "--help", HYBRID_PYTHON=sys.executable)
    assert result.returncode == 0 and not data.exists()


FAKE_UV = """#!/bin/sh
# uv venv --quiet --python PY VENV | uv pip install --quiet --python VENV_PY REQ...
case "$1" in
  venv) mkdir -p "$5/bin" && ln -s "$4" "$5/bin/python" ;;
  pip) sleep 3 ;;
esac
"""


def test_a_build_outlives_a_launcher_that_claude_code_stops(tmp_path):
    """Claude Code stops a server that has not connected within MCP_TIMEOUT: the build goes on."""
    copy, data, fake_bin = plugin_copy(tmp_path), tmp_path / "data", tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "uv").write_text(FAKE_UV)
    (fake_bin / "uv").chmod(0o755)
    environ = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "HYBRID_PYTHON", "VIRTUAL_ENV")}
    environ.update(CLAUDE_PLUGIN_DATA=str(data), PATH=f"{fake_bin}:/usr/local/bin:/usr/bin:/bin")
    server = subprocess.Popen([shutil.which("python3", path="/usr/local/bin:/usr/bin:/bin") or "python3",
                               str(copy / "bin" / "hybrid-mcp")], env=environ, start_new_session=True,
                              stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while not (data / "venv" / "bin" / "python").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(server.pid, signal.SIGTERM)  # the launcher's whole process group, as a client may
    server.wait(timeout=10)
    assert not (data / "venv" / launcher.STAMP).exists()  # stopped mid-build
    while not (data / "venv" / launcher.STAMP).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert (data / "venv" / launcher.STAMP).is_file(), (data / "bootstrap.log").read_text()


def test_the_key_is_handed_over_on_a_pipe_that_the_server_reads_once_and_closes(monkeypatch):
    from mcp_server import keys

    monkeypatch.setattr(keys, "_received", None)  # restored after: no other test sees this key
    env = keys.hand_over({"ZAI_API_KEY": "", "GLM_API_KEY": "k-123", "HYBRID_GLM_API_KEY": "", "PATH": "/bin"})
    assert set(env) == {"PATH", keys.KEY_FD_VARIABLE}
    fd = int(env[keys.KEY_FD_VARIABLE])
    monkeypatch.setenv(keys.KEY_FD_VARIABLE, str(fd))
    keys.receive()
    assert keys.received() == "k-123" and keys.KEY_FD_VARIABLE not in os.environ
    with pytest.raises(OSError):
        os.fstat(fd)  # closed: nothing left to read through /proc/<pid>/fd
    assert keys.hand_over({"PATH": "/bin"}) == {"PATH": "/bin"}  # no key: no pipe
