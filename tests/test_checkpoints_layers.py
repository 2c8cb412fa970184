"""The checkpoints package's one-way imports, its module sizes, and that the rest of the code
imports only the package's public surface."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import mcp_server.checkpoints as checkpoints

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "mcp_server" / "checkpoints"
# Each module may import only the modules before it.
LAYERS = ("model", "validation", "yaml_document", "history_file", "rules", "store", "views")
MAX_LINES = 400


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, ``from package import name`` counted as ``package.name``."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def test_every_module_has_a_place_in_the_layers():
    assert sorted(path.stem for path in PACKAGE.glob("*.py")) == sorted(("__init__", *LAYERS))


def test_each_module_imports_only_the_modules_before_it():
    for index, layer in enumerate(LAYERS):
        own = {name.removeprefix("mcp_server.checkpoints.") for name in imported_modules(PACKAGE / f"{layer}.py")
               if name.startswith("mcp_server.checkpoints")}
        inside = {name.split(".")[0] for name in own if name in LAYERS or name.split(".")[0] in LAYERS}
        assert "mcp_server.checkpoints" not in own, f"{layer} imports the package itself"
        assert inside <= set(LAYERS[:index]), f"{layer} imports {sorted(inside - set(LAYERS[:index]))}, a later module"


def test_no_module_is_over_the_size_limit():
    sizes = {path.name: len(path.read_text(encoding="utf-8").splitlines()) for path in PACKAGE.glob("*.py")}
    assert all(lines <= MAX_LINES for lines in sizes.values()), sizes


def test_the_rest_of_the_code_imports_only_the_package():
    outside = [p for folder in ("mcp_server", "bench") for p in (REPO / folder).rglob("*.py") if PACKAGE not in p.parents]
    for path in outside:
        inner = {name for name in imported_modules(path)
                 if any(name.startswith(f"mcp_server.checkpoints.{layer}") for layer in LAYERS)}
        assert not inner, f"{path.relative_to(REPO)} imports {sorted(inner)}; import from mcp_server.checkpoints"


def test_the_public_surface_is_named_and_complete():
    assert len(set(checkpoints.__all__)) == len(checkpoints.__all__)
    assert all(hasattr(checkpoints, name) for name in checkpoints.__all__)
    assert not set(LAYERS) & set(checkpoints.__all__), "a public name hides a module of the same name"


def test_importing_the_package_loads_neither_jsonschema_nor_the_mcp_server():
    code = "import sys, mcp_server.checkpoints; print(sorted(m for m in ('jsonschema', 'mcp', 'httpx', 'pydantic') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert done.stdout.strip() == "[]"
