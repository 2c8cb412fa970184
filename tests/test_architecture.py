"""The shape of the code, read statically from the ast: no import cycles in mcp_server/, the hook
path imports nothing but the standard library and mcp_server, and mcp_server/__init__.py is empty.

Every import statement counts, those inside functions included: an import deferred to call
time still ties the two modules together. A module's implicit import of its parent packages
does not count, or every package whose ``__init__`` names its public surface would be a cycle.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGE = "mcp_server"
HOOK_PACKAGE = "mcp_server.usage.hook"
HOOK_SCRIPT = REPO / "hooks" / "record.py"
HOOK_LAYERS = ["project", "plan", "catch_up", "budget", "events"]  # each imports only those before it
# What the hooks may load of mcp_server; the runtime check is in tests/test_hooks.py.
HOOK_PATH_MODULES = {
    "mcp_server", "mcp_server.usage", "mcp_server.ledger", "mcp_server.ledger_totals", "mcp_server.ledger_connection", "mcp_server.ledger_faults",
    "mcp_server.ledger_spool", "mcp_server.ledger_test_runs", "mcp_server.ledger_runs",
    "mcp_server.errors", "mcp_server.usage.transcripts", "mcp_server.usage.agent_totals", "mcp_server.launcher",
    "mcp_server.keys",
}
STDLIB = set(sys.stdlib_module_names)


class Package:
    """The modules of one package under ``root``, and the imports of each."""

    def __init__(self, root: Path, name: str):
        self.files: dict[str, Path] = {}
        for path in sorted((root / name).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            self.files[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path

    def is_package(self, module: str) -> bool:
        return self.files[module].name == "__init__.py"

    def imports(self, module: str, path: Path | None = None) -> set[str]:
        """The modules ``module`` imports: ours by their full name (``from pkg import sub`` is
        pkg.sub when that is a module, pkg otherwise), anyone else's by their full name too."""
        path = path or self.files[module]
        anchor = module if path.name == "__init__.py" else module.rpartition(".")[0]
        found = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, ast.Import):
                found |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = anchor.split(".")
                    if node.level - 1 >= len(parts):
                        raise AssertionError(f"{module}: a relative import goes above the top package")
                    base = ".".join(filter(None, [*parts[: len(parts) - (node.level - 1)], base]))
                for alias in node.names:
                    submodule = f"{base}.{alias.name}"
                    found.add(submodule if submodule in self.files else base)
        return found

    def graph(self) -> dict[str, set[str]]:
        return {module: {m for m in self.imports(module) if m in self.files} for module in self.files}


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected group of modules (Tarjan), as a -> ... -> a."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.add(member)
                if member == node:
                    break
            if len(group) > 1 or node in graph[node]:
                groups.append(group)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [cycle_through(graph, group) for group in sorted(groups, key=min)]


def cycle_through(graph: dict[str, set[str]], group: set[str]) -> list[str]:
    """The shortest path from the group's first module back to itself, inside the group."""
    start = min(group)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for target in sorted(graph[node] & group):
                if target == start:
                    return paths[node] + [start]
                if target not in paths:
                    paths[target] = paths[node] + [target]
                    following.append(target)
        frontier = following
    raise AssertionError(f"no cycle through {start}")  # a strongly connected group always has one


def assert_no_cycles(root: Path, name: str) -> None:
    cycles = find_cycles(Package(root, name).graph())
    assert not cycles, "import cycle(s): " + "; ".join(" -> ".join(cycle) for cycle in cycles)


# --- the real package --------------------------------------------------------------------------


def test_mcp_server_has_no_import_cycle():
    assert_no_cycles(REPO, PACKAGE)


def test_mcp_server_init_imports_nothing():
    tree = ast.parse((REPO / PACKAGE / "__init__.py").read_text(encoding="utf-8"))
    imports = [f"line {node.lineno}: {ast.unparse(node)}" for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))]
    assert not imports, imports


def test_the_hook_path_imports_only_the_stdlib_and_mcp_server():
    """hooks/record.py and every mcp_server module it reaches, transitively, with the packages
    each one's import runs first."""
    package = Package(REPO, PACKAGE)
    pending = [(HOOK_SCRIPT.name, package.imports("hooks", HOOK_SCRIPT))]
    reached: set[str] = set()
    outside = []
    while pending:
        importer, imports = pending.pop()
        for imported in sorted(imports):
            top = imported.split(".")[0]
            if top != PACKAGE:
                if top not in STDLIB:
                    outside.append(f"{importer} imports {imported}")
                continue
            parts = imported.split(".")
            for depth in range(1, len(parts) + 1):
                module = ".".join(parts[:depth])
                if module not in package.files:
                    outside.append(f"{importer} imports {imported}, which is not a module")
                elif module not in reached:
                    reached.add(module)
                    pending.append((module, package.imports(module)))
    assert not outside, outside
    assert HOOK_PACKAGE in reached
    beyond = {m for m in reached if m not in HOOK_PATH_MODULES and not m.startswith(HOOK_PACKAGE)}
    assert not beyond, f"the hooks reach {sorted(beyond)}: keep them on the stdlib and the ledger"


def test_the_hook_modules_import_only_those_above_them():
    """The order mcp_server/usage/hook/__init__.py documents; the package itself names events."""
    package = Package(REPO, PACKAGE)
    for position, name in enumerate(HOOK_LAYERS):
        module = f"{HOOK_PACKAGE}.{name}"
        ours = {m.rpartition(".")[2] for m in package.imports(module) if m.startswith(HOOK_PACKAGE + ".")}
        assert ours <= set(HOOK_LAYERS[:position]), f"{module} imports {sorted(ours - set(HOOK_LAYERS[:position]))}"
    hook_modules = {m for m in package.files if m.startswith(HOOK_PACKAGE + ".")}
    assert hook_modules == {f"{HOOK_PACKAGE}.{name}" for name in HOOK_LAYERS}


# --- the check itself, on small packages in tmp_path -----------------------------------------


def write_package(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_a_cycle_through_relative_imports_fails_and_is_named(tmp_path):
    root = write_package(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/a.py": "from . import b\n",
        "pkg/b.py": "def later():\n    from .sub.c import thing\n",  # deferred imports count too
        "pkg/sub/__init__.py": "",
        "pkg/sub/c.py": "import os\nfrom .. import a\nthing = 1\n",
        "pkg/d.py": "import pkg.a\n",  # imports into the cycle, not part of it
    })
    with pytest.raises(AssertionError, match=r"(?m)import cycle\(s\): pkg\.a -> pkg\.b -> pkg\.sub\.c -> pkg\.a$"):
        assert_no_cycles(root, "pkg")


def test_a_module_importing_itself_is_a_cycle(tmp_path):
    root = write_package(tmp_path, {"pkg/__init__.py": "", "pkg/a.py": "from pkg import a\n"})
    with pytest.raises(AssertionError, match=r"pkg\.a -> pkg\.a"):
        assert_no_cycles(root, "pkg")


def test_a_package_init_naming_its_surface_is_no_cycle(tmp_path):
    """``from pkg.a import x`` in pkg/b.py runs pkg/__init__.py first, which imports pkg.b:
    legal, and the reason implicit parent imports do not count. ``from pkg import name`` for a
    name of the ``__init__`` does count, and then it is a cycle."""
    files = {
        "pkg/__init__.py": "from pkg.b import y\n",
        "pkg/a.py": "x = 1\n",
        "pkg/b.py": "from pkg.a import x\ny = x\n",
    }
    root = write_package(tmp_path, files)
    graph = Package(root, "pkg").graph()
    assert graph == {"pkg": {"pkg.b"}, "pkg.a": set(), "pkg.b": {"pkg.a"}}
    assert_no_cycles(root, "pkg")
    (root / "pkg" / "a.py").write_text("from pkg import y\nx = 1\n")
    with pytest.raises(AssertionError, match=r"(?m)pkg -> pkg\.b -> pkg\.a -> pkg$"):
        assert_no_cycles(root, "pkg")


def test_imports_resolve_relative_and_absolute_forms(tmp_path):
    root = write_package(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/a.py": "",
        "pkg/sub/__init__.py": "from . import d\nfrom .d import f\n",
        "pkg/sub/d.py": "from ..a import *\nfrom .. import a, missing\nimport pkg.sub\nimport json, yaml.loader\n",
    })
    package = Package(root, "pkg")
    assert package.imports("pkg.sub") == {"pkg.sub.d"}
    assert package.imports("pkg.sub.d") == {"pkg.a", "pkg", "pkg.sub", "json", "yaml.loader"}
    assert find_cycles(package.graph()) == [["pkg.sub", "pkg.sub.d", "pkg.sub"]]
