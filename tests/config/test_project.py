"""Project-wide checks: migrations, compose.yaml, lazy imports, the first admin."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection
from django.db.migrations.loader import MigrationLoader
from django.test import Client

from tests.conftest import World

BASE_DIR = Path(__file__).resolve().parents[2]


@pytest.mark.django_db
def test_no_missing_migrations() -> None:
    """`makemigrations --check` is part of the test run."""
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)


@pytest.mark.django_db
def test_migrations_begin_with_custom_user_and_pgvector() -> None:
    loader = MigrationLoader(connection)
    accounts_initial = loader.get_migration("accounts", "0001_initial")
    assert any(getattr(op, "name", "") == "User" for op in accounts_initial.operations)
    kb_initial = loader.get_migration("kb", "0001_pgvector")
    assert type(kb_initial.operations[0]).__name__ == "VectorExtension"
    assert get_user_model()._meta.label == "accounts.User"
    with connection.cursor() as cursor:
        cursor.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
        assert cursor.fetchone()[0].startswith("0.8")


def _compose_config(tmp_path: Path) -> dict:
    compose = shutil.which("docker-compose")
    if compose is None:
        pytest.skip(
            "Debian's docker-compose is not installed (make test installs it as root)"
        )
    shutil.copy(BASE_DIR / "compose.yaml", tmp_path / "compose.yaml")
    shutil.copy(BASE_DIR / ".env.example", tmp_path / ".env")
    result = subprocess.run(
        [compose, "--profile", "gpu", "--profile", "cpu", "config"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": os.environ["PATH"], "HOME": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def test_compose_file_is_valid_and_complete(tmp_path: Path) -> None:
    config = _compose_config(tmp_path)
    services = config["services"]
    assert {"db", "redis", "migrate", "web", "worker", "beat", "vllm", "llm"} <= set(
        services
    )
    assert services["db"]["image"].startswith("pgvector/pgvector")
    gpu = services["vllm"]["deploy"]["resources"]["reservations"]["devices"][0]
    assert "gpu" in gpu["capabilities"]
    assert "healthcheck" in services["vllm"]
    # Measured on an H200: first tokens stay within 1.3 x one answer's at 16
    # answers at once only with vLLM's asynchronous scheduling off.
    assert "--no-async-scheduling" in services["vllm"]["command"]
    assert services["llm"]["profiles"] == ["cpu"]
    assert (
        services["web"]["depends_on"]["migrate"]["condition"]
        == "service_completed_successfully"
    )
    assert "dbdata" in config["volumes"]


def test_compose_refuses_to_start_without_secrets(tmp_path: Path) -> None:
    """Production secrets have no default: an .env without them fails."""
    compose = shutil.which("docker-compose")
    if compose is None:
        pytest.skip("Debian's docker-compose is not installed")
    shutil.copy(BASE_DIR / "compose.yaml", tmp_path / "compose.yaml")
    (tmp_path / ".env").write_text("LLM_MODEL=x\n")
    result = subprocess.run(
        [compose, "config"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": os.environ["PATH"], "HOME": str(tmp_path)},
    )
    assert result.returncode != 0
    assert "POSTGRES_PASSWORD" in result.stderr or "SECRET_KEY" in result.stderr


def test_dockerfile_installs_cpu_torch() -> None:
    dockerfile = (BASE_DIR / "Dockerfile").read_text()
    assert (
        "torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu" in dockerfile
    )


def test_web_process_never_imports_heavy_libraries() -> None:
    """The web process loads every URL and view without torch, sentence-transformers
    or unstructured (they belong to workers, imported lazily)."""
    code = (
        "import sys, django; django.setup();"
        "from django.urls import get_resolver; get_resolver().url_patterns;"
        "import config.wsgi;"
        "heavy = [m for m in ('torch', 'sentence_transformers', 'unstructured', 'llama_cpp') if m in sys.modules];"
        "print(','.join(heavy))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings"},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""


@pytest.mark.django_db
def test_first_admin_is_created_once_with_a_generated_password(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, settings
) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.Argon2PasswordHasher"]
    monkeypatch.delenv("ADMIN_PASSWORD", raising=False)
    monkeypatch.setenv("ADMIN_USERNAME", "root-admin")
    call_command("ensure_admin")
    first = capsys.readouterr().out
    assert "password:" in first
    password = first.split("password:")[1].split()[0]
    user = get_user_model().objects.get(username="root-admin")
    assert user.is_superuser and user.check_password(password)
    assert password not in user.password  # stored hashed (Argon2)
    assert user.password.startswith("argon2")

    call_command("ensure_admin")
    assert "password:" not in capsys.readouterr().out


def test_every_page_has_an_icon(world: World, client: Client) -> None:
    client.force_login(world.alice)
    page = client.get("/collections/").content.decode()
    assert 'rel="icon"' in page and "favicon.svg" in page
    icon = client.get("/favicon.ico")
    assert icon.status_code == 301 and icon["Location"].endswith("favicon.svg")
    assert (BASE_DIR / "static" / "favicon.svg").is_file()
