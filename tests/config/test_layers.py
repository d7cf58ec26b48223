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
    ],
)
def test_a_layer_imports_nothing_above_it(package: str, forbidden: set[str]) -> None:
    wrong = {
        module: sorted(names & forbidden)
        for module, names in _imports(package).items()
        if names & forbidden
    }
    assert wrong == {}
