"""The embedded PostgreSQL's memory settings (config.launcher)."""

from __future__ import annotations

import os

import pytest
from django.db import connection

from config.launcher import (
    POSTGRES_SETTINGS_FILE,
    memory_bytes,
    postgres_settings,
    write_postgres_settings,
)

GIB = 2**30


def test_shared_buffers_are_a_quarter_of_memory_within_bounds(monkeypatch) -> None:
    monkeypatch.delenv("POSTGRES_SHARED_BUFFERS", raising=False)
    assert postgres_settings(8 * GIB) == {
        "shared_buffers": "2048MB",
        "effective_cache_size": "6144MB",
    }
    # A small machine keeps PostgreSQL's own default; a large one is capped.
    assert postgres_settings(256 * 2**20)["shared_buffers"] == "128MB"
    assert postgres_settings(512 * GIB)["shared_buffers"] == "8192MB"


def test_shared_buffers_can_be_set(monkeypatch) -> None:
    monkeypatch.setenv("POSTGRES_SHARED_BUFFERS", "3GB")
    assert postgres_settings(8 * GIB)["shared_buffers"] == "3GB"


def test_settings_file_is_included_once_and_rewritten(tmp_path) -> None:
    (tmp_path / "postgresql.conf").write_text("port = 5432\n", encoding="utf-8")
    write_postgres_settings(tmp_path, {"shared_buffers": "1GB"})
    write_postgres_settings(tmp_path, {"shared_buffers": "2GB"})
    main = (tmp_path / "postgresql.conf").read_text(encoding="utf-8")
    assert main.count(POSTGRES_SETTINGS_FILE) == 1
    assert "shared_buffers = '2GB'" in (tmp_path / POSTGRES_SETTINGS_FILE).read_text(
        encoding="utf-8"
    )


@pytest.mark.skipif(
    "DATABASE_URL" in os.environ and "host=/" not in os.environ["DATABASE_URL"],
    reason="the tests run against a database the launcher did not start",
)
def test_the_embedded_server_runs_with_them(db: None) -> None:
    expected = postgres_settings(memory_bytes())["shared_buffers"]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT setting::bigint * pg_size_bytes(unit), pg_size_bytes(%s)"
            " FROM pg_settings WHERE name = 'shared_buffers'",
            [expected],
        )
        running, written = cursor.fetchone()
    assert running == written >= 128 * 2**20
