"""Starts the plugin's Python programs from an installed plugin, which is a bare copy with no venv.

Standard library only: it runs under whatever ``python3`` is on PATH. On first start it
creates a venv in ``$CLAUDE_PLUGIN_DATA`` (with ``uv`` when it is on PATH, otherwise with
``python3 -m venv`` and pip) holding the dependencies from pyproject.toml. The code itself
is run from the plugin folder (PYTHONPATH), so an updated plugin needs no reinstall unless
its dependencies changed. Later starts compare a hash stamp and exec at once, with no pip.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

STAMP = ".hybrid-stamp"
TELEMETRY_SWITCHES = ("HYBRID_OPTION_TELEMETRY_ENDPOINT", "HYBRID_TELEMETRY_ENDPOINT")
FAILURE = "bootstrap.error"  # the builder's one-line reason, read by the waiting launcher
MIN_PYTHON = (3, 11)


class BootstrapError(Exception):
    pass


def plugin_data_dir(root: Path) -> Path:
    # Claude Code gives CLAUDE_PLUGIN_DATA to the MCP server and hooks, not to Bash commands; for
    # those, the SessionStart hook (hooks/first-start.sh) exports it as HYBRID_PLUGIN_DATA.
    for name in ("CLAUDE_PLUGIN_DATA", "HYBRID_PLUGIN_DATA"):
        data = os.environ.get(name, "").strip()
        if data:
            return Path(data)
    return root / ".hybrid-data"


def _wants_telemetry() -> bool:
    """The plugin option (or the variable) that turns telemetry on also brings its extra in."""
    return any(os.environ.get(name, "").strip() for name in TELEMETRY_SWITCHES)


def _requirements(root: Path, *, fast: bool = True) -> list[str]:
    """The dependencies, the telemetry extra when it is on, and the ``fast`` extra (compiled
    speed-ups the code can do without) when ``fast``."""
    import tomllib  # 3.11+, checked before we get here

    with open(root / "pyproject.toml", "rb") as handle:
        project = tomllib.load(handle)["project"]
    extras = project.get("optional-dependencies", {})
    wanted = [*(extras["otel"] if _wants_telemetry() else []), *(extras.get("fast", []) if fast else [])]
    return [*project["dependencies"], *wanted]


def _stamp(root: Path) -> str:
    digest = hashlib.sha256((root / "pyproject.toml").read_bytes())
    digest.update(sys.version.encode())
    if _wants_telemetry():
        digest.update(b"+otel")
    return digest.hexdigest()


def venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def _run(command: list[str], log: Path) -> None:
    with open(log, "ab") as out:
        out.write(f"$ {' '.join(command)}\n".encode())
        out.flush()
        completed = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    if completed.returncode != 0:
        tail = log.read_text(errors="replace").strip().splitlines()[-1:] or ["(no output)"]
        raise BootstrapError(f"`{' '.join(command[:3])} ...` failed ({tail[0][:200]}); full log: {log}")


def _build(root: Path, venv: Path, log: Path) -> None:
    uv = shutil.which("uv")
    if uv:
        _run([uv, "venv", "--quiet", "--python", sys.executable, str(venv)], log)
        install = [uv, "pip", "install", "--quiet", "--python", str(venv_python(venv))]
    else:
        _run([sys.executable, "-m", "venv", str(venv)], log)
        install = [str(venv_python(venv)), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    with_fast, plain = _requirements(root, fast=True), _requirements(root, fast=False)
    try:
        _run([*install, *with_fast], log)
    except BootstrapError:
        if with_fast == plain:
            raise
        # a compiled speed-up without a wheel for this platform: the code does without it
        with open(log, "ab") as out:
            out.write(b"hybrid: the [fast] extra did not install; installing without it\n")
        _run([*install, *plain], log)


def _venv_is_current(venv: Path, want: str) -> bool:
    stamp = venv / STAMP
    return stamp.is_file() and stamp.read_text().strip() == want and venv_python(venv).exists()


def build_locked(root: Path) -> None:
    """Build the venv unless another builder just did; the stamp is written last."""
    data = plugin_data_dir(root)
    venv = data / "venv"
    want = _stamp(root)
    data.mkdir(parents=True, exist_ok=True)
    # Two sessions may start at once; the second waits and then finds the stamp.
    with open(data / ".bootstrap.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _venv_is_current(venv, want):
            return
        if venv.exists():  # a stale or half-built venv: start clean
            shutil.rmtree(venv)
        _build(root, venv, data / "bootstrap.log")
        (venv / STAMP).write_text(want + "\n")


def _run_builder(root: Path) -> None:
    """Run build_locked in a process of its own session. Claude Code stops an MCP server that has
    not connected within MCP_TIMEOUT (30 s by default); a slow first build must still finish, so
    that the next start finds the venv instead of starting over."""
    data = plugin_data_dir(root)
    failure = data / FAILURE
    failure.unlink(missing_ok=True)
    builder = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "build", str(root)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    if builder.wait() != 0:
        reason = failure.read_text().strip() if failure.is_file() else f"the builder exited with {builder.returncode}"
        raise BootstrapError(reason)


def ensure_venv(root: Path) -> Path:
    """The venv's python, building or rebuilding the venv when the stamp does not match."""
    venv = plugin_data_dir(root) / "venv"
    if not _venv_is_current(venv, _stamp(root)):
        print(f"hybrid: first start, installing Python dependencies into {venv} (once)", file=sys.stderr)
        _run_builder(root)
    return venv_python(venv)


def launch(root: Path, module: str, argv: list[str]) -> None:
    """Exec ``python -m module argv...`` from the plugin's venv; one clear stderr line on failure."""
    try:
        preset = os.environ.get("HYBRID_PYTHON", "").strip()
        if preset:  # an interpreter that already has the dependencies (development, tests)
            python = Path(preset)
            if not python.exists():
                raise BootstrapError(f"HYBRID_PYTHON={preset} does not exist")
        elif sys.version_info < MIN_PYTHON:
            raise BootstrapError(
                f"needs Python {'.'.join(map(str, MIN_PYTHON))} or newer as python3, found {sys.version.split()[0]}"
            )
        else:
            python = ensure_venv(root)
    except (BootstrapError, OSError, KeyError, ValueError) as error:  # TOMLDecodeError is a ValueError
        print(f"hybrid: could not set up the plugin's Python environment: {error}", file=sys.stderr)
        raise SystemExit(1) from None
    env = dict(os.environ)
    if module == "mcp_server":  # the key goes on a pipe: generated code can read a server's environment
        from mcp_server import keys  # here, not at the top: this file also runs as a script (build)

        env = keys.hand_over(env)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH", "")]))
    os.execve(str(python), [str(python), "-m", module, *argv], env)


def _builder_main(root: Path) -> int:
    plugin_data_dir(root).mkdir(parents=True, exist_ok=True)
    try:
        build_locked(root)
    except (BootstrapError, OSError, KeyError, ValueError) as error:
        (plugin_data_dir(root) / FAILURE).write_text(f"{error}\n")
        return 1
    return 0


if __name__ == "__main__" and sys.argv[1:2] == ["build"]:
    raise SystemExit(_builder_main(Path(sys.argv[2])))
