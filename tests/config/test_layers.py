"""The layers hold: ``core`` imports no app, identity (``accounts``) does not
know documents, and nothing below ``config`` imports it except for settings."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

BASE_DIR = Path(__file__).resolve().parents[2]
APPS = {"accounts", "kb", "ingest", "inference", "ops", "config"}


def _imports(package: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in (BASE_DIR / package).rglob("*.py"):
        if "migrations" in path.parts:
            continue
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
            elif isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
        found[str(path.relative_to(BASE_DIR))] = names
    return found


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("core", APPS),
        ("accounts", {"kb", "ingest", "inference", "ops", "config"}),
        ("kb", {"ingest", "inference", "ops", "config"}),
        ("ingest", {"inference", "ops", "config"}),
        ("inference", {"ops", "config"}),
        ("ops", {"config"}),
    ],
)
def test_a_layer_imports_nothing_above_it(package: str, forbidden: set[str]) -> None:
    wrong = {
        module: sorted(names & forbidden)
        for module, names in _imports(package).items()
        if names & forbidden
    }
    assert wrong == {}


MAX_MODULE_LINES = 600


def test_no_module_of_product_code_is_over_600_lines() -> None:
    long = {
        str(path.relative_to(BASE_DIR)): lines
        for package in sorted(APPS | {"core"})
        for path in (BASE_DIR / package).rglob("*.py")
        if "migrations" not in path.parts
        and (lines := len(path.read_text(encoding="utf-8").splitlines()))
        > MAX_MODULE_LINES
    }
    assert long == {}


def _module_graph() -> dict[str, set[str]]:
    """Module-level imports between product modules (a package's submodule
    imported by name counts as that submodule, not as the package)."""
    modules: dict[str, Path] = {}
    for package in sorted(APPS | {"core"}):
        for path in (BASE_DIR / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            name = ".".join(path.relative_to(BASE_DIR).with_suffix("").parts)
            modules[name.removesuffix(".__init__")] = path
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        wanted: set[str] = set()
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.Import):
                wanted.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                submodules = {f"{node.module}.{alias.name}" for alias in node.names}
                found = submodules & modules.keys()
                wanted.update(found or {node.module})
        graph[name] = {other for other in wanted & modules.keys() if other != name}
    return graph


def test_no_import_cycles() -> None:
    graph = _module_graph()
    cycles: list[list[str]] = []
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for other in sorted(graph[module]):
            if state.get(other) == 1:
                cycles.append(path[path.index(other) :])
            elif other not in state:
                visit(other)
        path.pop()
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)
    assert cycles == []
