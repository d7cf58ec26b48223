"""docs/configuration.md lists every environment variable the code reads,
and nothing it does not: it cannot drift from the settings."""

from __future__ import annotations

import re
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[2]
PAGE = BASE_DIR / "docs" / "configuration.md"
SOURCES = ["config", "core", "accounts", "kb", "ingest", "inference", "ops"]
# Read by the code, but set by the launcher or the system for the code,
# never by a user.
INTERNAL = {"DJANGO_SETTINGS_MODULE", "DJANGO_SUPERUSER_PASSWORD", "LAUNCHER_PID"}
READS = [
    re.compile(r'env_[a-z_]+\(\s*"([A-Z][A-Z0-9_]+)"', re.S),
    re.compile(r'os\.environ(?:\.get)?[(\[]\s*"([A-Z][A-Z0-9_]+)"'),
]


def _read_by_code() -> set[str]:
    names: set[str] = set()
    for source in SOURCES:
        for path in (BASE_DIR / source).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            for pattern in READS:
                names.update(pattern.findall(text))
    return names - INTERNAL


def _documented() -> tuple[set[str], set[str]]:
    text = PAGE.read_text(encoding="utf-8")
    tables, compose_part = text.split("## Only in `compose.yaml`")
    in_tables = set(re.findall(r"^\| `([A-Z0-9_]+)`", tables, re.M))
    in_tables |= {
        name
        for row in re.findall(r"^\| (`[A-Z0-9_]+`(?:, `[A-Z0-9_]+`)+) \|", tables, re.M)
        for name in re.findall(r"`([A-Z0-9_]+)`", row)
    }
    return in_tables, set(re.findall(r"`([A-Z0-9_]+)`", compose_part))


def test_every_variable_the_code_reads_is_documented() -> None:
    in_tables, _compose = _documented()
    assert sorted(_read_by_code() - in_tables) == []


def test_every_documented_variable_exists() -> None:
    in_tables, compose_only = _documented()
    compose = (BASE_DIR / "compose.yaml").read_text() + (
        BASE_DIR / ".env.example"
    ).read_text()
    assert sorted(in_tables - _read_by_code()) == []
    assert sorted(name for name in compose_only if name not in compose) == []
