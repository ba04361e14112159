"""The engine's layout keeps its rules (DESIGN.md): no import cycle inside
`background_core`, modules you can read in one sitting, and no module that reaches into
another module's private members. Read from the source with `ast`; nothing is imported."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.helpers import ROOT

ENGINE = ROOT / "background_core"
PACKAGES = (ENGINE, ROOT / "background", ROOT / "integrations")
MOST_LINES = 300
FACADE = ENGINE / "_pool.py"
FACADE_MOST_LINES = 520  # the facade may be the largest (DESIGN.md): the public API, documented
# Underscore names that are documented public API (the stdlib's, and Flask's proxies).
PUBLIC_UNDERSCORE = {"os._exit", "sys._getframe", "current_app._get_current_object"}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def engine_modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(ENGINE.rglob("*.py"))}


def imports_of(name: str, path: Path) -> set[str]:
    """The `background_core` modules that the module `name` imports (relative ones too)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            candidates = [target] + [f"{target}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        else:
            continue
        found |= {c for c in candidates if c in engine_modules()}
    found.discard(name)
    return found


def test_no_import_cycle_inside_the_engine() -> None:
    graph = {name: imports_of(name, path) for name, path in engine_modules().items()}
    # A package's __init__ re-exports its modules; a module importing a sibling package
    # means that package's __init__, which is what the graph holds.
    state: dict[str, str] = {}
    cycles: list[list[str]] = []

    def visit(node: str, trail: list[str]) -> None:
        state[node] = "open"
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                cycles.append([*trail[trail.index(target) :], target])
            elif target not in state:
                visit(target, [*trail, target])
        state[node] = "done"

    for name in graph:
        if name not in state:
            visit(name, [name])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_the_graph_sees_the_imports() -> None:
    graph = {name: imports_of(name, path) for name, path in engine_modules().items()}
    assert "background_core._workers" in graph["background_core._pool"]
    assert "background_core._pool" in graph["background_core._exit"]
    assert "background_core._errors" in graph["background_core.dask._connection"]


def test_engine_modules_are_short() -> None:
    sizes = {path: len(path.read_text().splitlines()) for path in engine_modules().values()}
    too_long = {
        str(path.relative_to(ROOT)): lines
        for path, lines in sizes.items()
        if lines > (FACADE_MOST_LINES if path == FACADE else MOST_LINES)
    }
    assert not too_long, f"split these by concept: {too_long}"
    assert sizes[FACADE] == max(sizes.values())


def private_names_defined(tree: ast.Module) -> set[str]:
    """Underscore names a module defines: functions, classes, attributes of its classes."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            names.add(node.value)  # __slots__ entries
    return {name for name in names if name.startswith("_") and not name.startswith("__")}


def foreign_private_uses(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    own = private_names_defined(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level:
            found += [
                f"from {'.' * node.level}{node.module} import {alias.name}"
                for alias in node.names
                if alias.name.startswith("_") and not alias.name.startswith("__")  # __version__
            ]
        if not isinstance(node, ast.Attribute):
            continue
        attr = node.attr
        if not attr.startswith("_") or attr.startswith("__") or attr in own:
            continue
        owner = ast.unparse(node.value)
        if owner in {"self", "cls", "super()"} or f"{owner}.{attr}" in PUBLIC_UNDERSCORE:
            continue
        found.append(f"line {node.lineno}: {owner}.{attr}")
    return found


def test_no_module_reaches_into_another_modules_private_members() -> None:
    found = {}
    for package in PACKAGES:
        for path in sorted(package.rglob("*.py")):
            uses = foreign_private_uses(path)
            if uses:
                found[str(path.relative_to(ROOT))] = uses
    assert not found, found


def test_the_private_member_check_sees_a_reach(tmp_path: Path) -> None:
    module = tmp_path / "reach.py"
    module.write_text(
        "from ._ledger import _RECHECK\n"
        "class Mine:\n"
        "    def __init__(self):\n"
        "        self._own = 1\n"
        "def use(pool, mine):\n"
        "    return pool._lock, mine._own, os._exit\n"
    )
    assert foreign_private_uses(module) == [
        "from ._ledger import _RECHECK",
        "line 6: pool._lock",
    ]
