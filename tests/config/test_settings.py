"""Settings come from the environment through typed helpers that fail loudly."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from core import env

BASE_DIR = Path(__file__).resolve().parents[2]


def test_env_bool_rejects_a_value_it_cannot_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SOME_FLAG", "maybe")
    with pytest.raises(
        ImproperlyConfigured, match="SOME_FLAG='maybe' is not a boolean"
    ):
        env.env_bool("SOME_FLAG", False)


def test_env_int_rejects_garbage_and_values_below_minimum(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SOME_INT", "ten")
    with pytest.raises(ImproperlyConfigured, match="not an integer"):
        env.env_int("SOME_INT", 1)
    monkeypatch.setenv("SOME_INT", "-1")
    with pytest.raises(ImproperlyConfigured, match="at least 0"):
        env.env_int("SOME_INT", 1, minimum=0)


def test_secret_read_from_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("s3cret\n")
    monkeypatch.delenv("A_SECRET", raising=False)
    monkeypatch.setenv("A_SECRET_FILE", str(secret))
    assert env.env_str("A_SECRET") == "s3cret"


def test_secret_given_twice_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("A_SECRET", "one")
    monkeypatch.setenv("A_SECRET_FILE", str(tmp_path / "two"))
    with pytest.raises(ImproperlyConfigured, match="not both"):
        env.env_str("A_SECRET")


def test_required_secret_without_value_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("A_SECRET", raising=False)
    monkeypatch.delenv("A_SECRET_FILE", raising=False)
    with pytest.raises(ImproperlyConfigured, match="must be set"):
        env.env_str("A_SECRET")


def test_database_url_with_socket_directory() -> None:
    config = env.database_from_url("postgresql://postgres:@/archivist?host=/tmp/pg")
    assert config["NAME"] == "archivist"
    assert config["HOST"] == "/tmp/pg"
    assert config["USER"] == "postgres"


def test_database_url_rejects_other_engines() -> None:
    with pytest.raises(ImproperlyConfigured, match="postgresql://"):
        env.database_from_url("mysql://u@h/db")


def _production_env(**extra: str) -> dict[str, str]:
    base = {
        key: value
        for key, value in os.environ.items()
        if key
        not in {"DEBUG", "HTTPS", "SECRET_KEY", "SECRET_KEY_FILE", "ALLOWED_HOSTS"}
    }
    return {
        **base,
        "SECRET_KEY": "prod-" + "k3y!" * 20,
        "ALLOWED_HOSTS": "archivist.example.com",
        **extra,
    }


def _manage(*args: str, env_vars: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(BASE_DIR / "manage.py"), *args],
        env=env_vars,
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_production_settings_pass_check_deploy_with_no_warnings() -> None:
    result = _manage(
        "check", "--deploy", "--fail-level", "WARNING", env_vars=_production_env()
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_debug_is_off_unless_asked_for() -> None:
    result = _manage(
        "shell",
        "-c",
        "from django.conf import settings; print(settings.DEBUG)",
        env_vars=_production_env(),
    )
    assert result.stdout.strip().splitlines()[-1] == "False", result.stderr


def test_missing_secret_key_stops_start_up() -> None:
    env_vars = _production_env()
    del env_vars["SECRET_KEY"]
    result = _manage("check", env_vars=env_vars)
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def test_makemigrations_check_needs_no_key(tmp_path: Path) -> None:
    """A fresh checkout can check for missing migrations before any key exists."""
    env_vars = _production_env(ARCHIVIST_VAR_DIR=str(tmp_path))
    del env_vars["SECRET_KEY"]
    result = _manage("makemigrations", "--check", "--dry-run", env_vars=env_vars)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No changes detected" in result.stdout


def test_a_bad_boolean_stops_start_up() -> None:
    result = _manage("check", env_vars=_production_env(DEBUG="yes please"))
    assert result.returncode != 0
    assert "DEBUG='yes please' is not a boolean" in result.stderr
