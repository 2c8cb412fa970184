"""The monitor's facade: ``mcp_server.monitor`` names the public surface and imports each name on
first use, the rest of the code imports only that, and no import cycle runs at import time.

tests/test_architecture.py checks every import statement but leaves out a module's implicit
import of its parent packages. That implicit import is what would make an eager facade a cycle
(importing any ``mcp_server.monitor.x`` runs ``mcp_server/monitor/__init__``), so this graph counts
it, and only the imports that run when a module is imported (not those inside functions).
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
import types
from pathlib import Path

from tests.test_architecture import PACKAGE, REPO, Package, find_cycles

# What code outside the monitor may import besides the facade: the entry point (`python -m`,
# the console script).
MONITOR_DOORS = {"mcp_server.monitor", "mcp_server.monitor.cli"}


def _import_time_nodes(body: list[ast.stmt]):
    for node in body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, ast.If):
            if ast.unparse(node.test) not in ("TYPE_CHECKING", "typing.TYPE_CHECKING"):
                yield from _import_time_nodes(node.body)
            yield from _import_time_nodes(node.orelse)
        elif isinstance(node, ast.Try):
            for block in (node.body, node.orelse, node.finalbody, *(h.body for h in node.handlers)):
                yield from _import_time_nodes(block)
        elif isinstance(node, (ast.With, ast.ClassDef)):
            yield from _import_time_nodes(node.body)


def import_time_graph(root: Path, name: str) -> dict[str, set[str]]:
    """Each module's imports that run when it is imported, with the parent packages each one
    runs first (those of the importer itself excepted: they are already running)."""
    package = Package(root, name)
    graph = {}
    for module, path in package.files.items():
        anchor = module if path.name == "__init__.py" else module.rpartition(".")[0]
        targets = set()
        for node in _import_time_nodes(ast.parse(path.read_text(encoding="utf-8")).body):
            if isinstance(node, ast.Import):
                targets |= {alias.name for alias in node.names}
                continue
            base = node.module or ""
            if node.level:
                parts = anchor.split(".")
                base = ".".join(filter(None, [*parts[: len(parts) - (node.level - 1)], base]))
            targets |= {f"{base}.{a.name}" if f"{base}.{a.name}" in package.files else base for a in node.names}
        edges = set()
        for target in targets:
            parts = target.split(".")
            for end in range(1, len(parts) + 1):
                step = ".".join(parts[:end])
                if step in package.files and step != module and not module.startswith(step + "."):
                    edges.add(step)
        graph[module] = edges
    return graph


def test_no_import_cycle_runs_at_import_time():
    assert find_cycles(import_time_graph(REPO, PACKAGE)) == []


def test_an_eager_facade_would_be_a_cycle_through_the_parent_import(tmp_path):
    files = {
        "pkg/__init__.py": "",
        "pkg/store.py": "from pkg.report.coverage import detect\n",
        "pkg/report/__init__.py": "from pkg.report.load import load\n",
        "pkg/report/load.py": "from pkg.store import thing\n",
        "pkg/report/coverage.py": "def detect():\n    import pkg.store  # later: not at import time\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert find_cycles(import_time_graph(tmp_path, "pkg")) == [["pkg.report", "pkg.report.load", "pkg.store", "pkg.report"]]
    (tmp_path / "pkg/report/__init__.py").write_text("def __getattr__(name):\n    from pkg.report.load import load\n    return load\n")
    assert find_cycles(import_time_graph(tmp_path, "pkg")) == []


def test_the_facade_names_exist_and_no_module_shadows_them():
    import mcp_server.monitor as monitor

    for info in pkgutil.iter_modules(monitor.__path__):
        importlib.import_module(f"mcp_server.monitor.{info.name}")  # binds each module on the package
    for name in monitor.__all__:
        value = getattr(monitor, name)
        assert not isinstance(value, types.ModuleType), name
        assert value.__module__.startswith("mcp_server.monitor."), name


def test_code_outside_the_monitor_imports_only_its_facade():
    package = Package(REPO, PACKAGE)
    outside = {module: path for module, path in package.files.items() if not module.startswith("mcp_server.monitor")}
    outside |= {f"bench.{path.stem}": path for path in (REPO / "bench").glob("*.py")}
    wrong = {}
    for module, path in outside.items():
        reached = {m for m in package.imports(module, path) if m.startswith("mcp_server.monitor")}
        if reached - MONITOR_DOORS:
            wrong[module] = sorted(reached - MONITOR_DOORS)
    assert wrong == {}
