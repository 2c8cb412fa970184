"""The package's imports run one way: no module imports, at import time, a module that imports
it back; and the rest of the code reaches the monitor only through its facade.

Read from the source (ast), not by importing: a cycle that Python happens to survive today
(because of the order the modules are first imported in) still fails here. Imports inside a
function run later and are left out, as are ``if TYPE_CHECKING:`` blocks.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
import types
from pathlib import Path

import mcp_server

REPO = Path(mcp_server.__file__).resolve().parent.parent


def module_files(package: str = "mcp_server") -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its __init__)."""
    root = REPO / package
    found = {}
    for path in root.rglob("*.py"):
        parts = path.relative_to(REPO).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _import_time_nodes(body: list[ast.stmt]):
    """The import statements that run when the module is imported."""
    for node in body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, ast.If):
            test = ast.unparse(node.test)
            if test not in ("TYPE_CHECKING", "typing.TYPE_CHECKING"):
                yield from _import_time_nodes(node.body)
            yield from _import_time_nodes(node.orelse)
        elif isinstance(node, ast.Try):
            for block in (node.body, node.orelse, node.finalbody, *(h.body for h in node.handlers)):
                yield from _import_time_nodes(block)
        elif isinstance(node, (ast.With, ast.ClassDef)):
            yield from _import_time_nodes(node.body)


def imported_names(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The modules of ``modules`` that importing ``name`` imports first (directly)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in _import_time_nodes(tree.body):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
            continue
        base = node.module or ""
        if node.level:
            anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
            base = ".".join([*anchor, *([base] if base else [])])
        for alias in node.names:
            sub = f"{base}.{alias.name}"
            targets.add(sub if sub in modules else base)
    edges = set()
    for target in targets:
        parts = target.split(".")
        # importing a.b.c runs a.b's __init__ too, unless the importer lives inside a.b
        for end in range(1, len(parts) + 1):
            step = ".".join(parts[:end])
            if step in modules and step != name and not name.startswith(step + "."):
                edges.add(step)
    return edges


def import_graph() -> dict[str, set[str]]:
    modules = module_files()
    return {name: imported_names(name, path, modules) for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycles():
    assert cycles(import_graph()) == []


def test_the_cycle_check_finds_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]


def test_a_from_import_of_a_submodule_and_a_relative_import_are_edges(tmp_path):
    modules = {"p": tmp_path / "p.py", "p.q": tmp_path / "q.py", "p.r": tmp_path / "r.py"}
    source = tmp_path / "r.py"
    source.write_text("from p import q\nfrom . import q as again\ndef later():\n    import p.r\n")
    assert imported_names("p.r", source, modules) == {"p.q"}
    other = tmp_path / "x.py"
    other.write_text("from p.q import thing\n")
    assert imported_names("x", other, {**modules, "x": other}) == {"p", "p.q"}


# --- the monitor's facade ------------------------------------------------------------------------

# what outside code may import besides the facade: the entry point (`python -m`, the console
# script) and the coverage readers, which the checkpoints use to check a coverage file
MONITOR_DOORS = {"mcp_server.monitor", "mcp_server.monitor.cli", "mcp_server.monitor.coverage"}


def test_the_monitor_facade_names_exist_and_are_not_shadowed_by_modules():
    import mcp_server.monitor as monitor

    for info in pkgutil.iter_modules(monitor.__path__):
        importlib.import_module(f"mcp_server.monitor.{info.name}")  # binds each module on the package
    for name in monitor.__all__:
        value = getattr(monitor, name)
        assert not isinstance(value, types.ModuleType), name
        assert value.__module__.startswith("mcp_server.monitor."), name


def test_code_outside_the_monitor_uses_its_facade():
    modules = module_files()
    outside = {name: path for name, path in modules.items() if not name.startswith("mcp_server.monitor")}
    outside.update({f"bench.{p.stem}": p for p in (REPO / "bench").glob("*.py")})
    wrong = {}
    for name, path in outside.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):  # function-level imports too
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            hits = [n for n in names if n.startswith("mcp_server.monitor") and n not in MONITOR_DOORS]
            if hits:
                wrong.setdefault(name, []).extend(hits)
    assert wrong == {}
