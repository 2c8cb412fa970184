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
MIN_PYTHON = (3, 11)


class BootstrapError(Exception):
    pass


def plugin_data_dir(root: Path) -> Path:
    data = os.environ.get("CLAUDE_PLUGIN_DATA", "").strip()
    return Path(data) if data else root / ".hybrid-data"


def _requirements(root: Path) -> list[str]:
    import tomllib  # 3.11+, checked before we get here

    with open(root / "pyproject.toml", "rb") as handle:
        return list(tomllib.load(handle)["project"]["dependencies"])


def _stamp(root: Path) -> str:
    digest = hashlib.sha256((root / "pyproject.toml").read_bytes())
    digest.update(sys.version.encode())
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
    requirements = _requirements(root)
    uv = shutil.which("uv")
    if uv:
        _run([uv, "venv", "--quiet", "--python", sys.executable, str(venv)], log)
        _run([uv, "pip", "install", "--quiet", "--python", str(venv_python(venv)), *requirements], log)
    else:
        _run([sys.executable, "-m", "venv", str(venv)], log)
        _run([str(venv_python(venv)), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *requirements], log)


def ensure_venv(root: Path) -> Path:
    """The venv's python, building or rebuilding the venv when the stamp does not match."""
    data = plugin_data_dir(root)
    venv = data / "venv"
    want = _stamp(root)
    stamp = venv / STAMP
    if stamp.is_file() and stamp.read_text().strip() == want and venv_python(venv).exists():
        return venv_python(venv)
    data.mkdir(parents=True, exist_ok=True)
    log = data / "bootstrap.log"
    # Two sessions may start at once; the second waits and then finds the stamp.
    with open(data / ".bootstrap.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if stamp.is_file() and stamp.read_text().strip() == want and venv_python(venv).exists():
            return venv_python(venv)
        print(f"hybrid: first start, installing Python dependencies into {venv} (once)", file=sys.stderr)
        if venv.exists():  # a stale or half-built venv: start clean
            shutil.rmtree(venv)
        _build(root, venv, log)
        stamp.write_text(want + "\n")
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
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH", "")]))
    os.execve(str(python), [str(python), "-m", module, *argv], env)
