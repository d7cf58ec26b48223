"""Management commands from a second shell, beside a running stack, the way a
user runs them: a fresh process with none of the stack's addresses in its
environment. The stack here is the launcher's own (``make run``), given a
running Redis and an LLM address, as the README says one may."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.conf import settings

from config.launcher import BASE_DIR, free_port, http_ok

pytestmark = pytest.mark.slow

# What a new shell in the checkout does not have.
STACK_VARIABLES = (
    "DATABASE_URL",
    "REDIS_URL",
    "LLM_BASE_URL",
    "LLM_MODEL",
    "SECRET_KEY",
    "SECRET_KEY_FILE",
    "PROMETHEUS_MULTIPROC_DIR",
)


@dataclass
class Stack:
    var_dir: Path
    url: str
    process: subprocess.Popen[bytes]


def _shell_env(var_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in STACK_VARIABLES}
    env["ARCHIVIST_VAR_DIR"] = str(var_dir)
    return env


def manage(var_dir: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(BASE_DIR / "manage.py"), *args],
        env={**_shell_env(var_dir), "DJANGO_SUPERUSER_PASSWORD": "ops-secret-1234"},
        cwd=BASE_DIR,
        input=stdin.encode(),
        capture_output=True,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    var_dir = tmp_path_factory.mktemp("stack")
    port = free_port()
    env = {
        **_shell_env(var_dir),
        # A running Redis, on a database of its own: this stack's worker and
        # beat must not take the test worker's tasks.
        "REDIS_URL": settings.REDIS_URL.rsplit("/", 1)[0] + "/9",
        # Nothing listens there: the stack starts without its own LLM server.
        "LLM_BASE_URL": "http://127.0.0.1:9/v1",
        "ARCHIVIST_PORT": str(port),
        "ADMIN_PASSWORD": "admin-secret-1234",
    }
    log = (var_dir / "launcher.out").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "config.launcher"],
        env=env,
        cwd=BASE_DIR,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while not (var_dir / "stack.env").exists() or not http_ok(f"{url}/healthz"):
        if process.poll() is not None or time.monotonic() > deadline:
            pytest.fail((var_dir / "launcher.out").read_text(errors="replace"))
        time.sleep(0.5)
    yield Stack(var_dir, url, process)
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        process.wait(60)


def test_the_stack_starts_with_a_given_llm_and_redis(stack: Stack) -> None:
    out = (stack.var_dir / "launcher.out").read_text()
    assert "llm        http://127.0.0.1:9/v1 (given)" in out
    assert "Archivist is running" in out
    # No EMBEDDING_MODEL: the new installation measured the multilingual
    # model and said which model it took and why.
    assert "Measuring the multilingual embedding model" in out
    assert any(
        reason in out
        for reason in (
            "finds documents across the two",
            "keeps the faster English-only",
        )
    )
    assert (stack.var_dir / "stack.env").stat().st_mode & 0o777 == 0o600


def test_commands_reach_the_running_stack(stack: Stack) -> None:
    created = manage(
        stack.var_dir,
        "createsuperuser",
        "--noinput",
        "--username",
        "ops",
        "--email",
        "ops@example.com",
    )
    assert created.returncode == 0, created.stderr.decode()
    changed = manage(
        stack.var_dir, "changepassword", "ops", stdin="n3w-Secret-9876\n" * 2
    )
    assert changed.returncode == 0, changed.stderr.decode()
    assert b"Password changed successfully" in changed.stdout
    shell = manage(
        stack.var_dir,
        "shell",
        "-c",
        "from accounts.models import User;"
        "print(User.objects.get(username='ops').check_password('n3w-Secret-9876'))",
    )
    assert shell.stdout.decode().strip().endswith("True"), shell.stderr.decode()
    storage = manage(stack.var_dir, "check_storage")
    assert storage.returncode == 0, storage.stderr.decode()
    backup = manage(
        stack.var_dir, "backup", "--output-dir", str(stack.var_dir / "backups")
    )
    assert backup.returncode == 0, backup.stderr.decode()
    assert list((stack.var_dir / "backups").iterdir())
    helped = manage(stack.var_dir, "evaluate", "--help")
    assert helped.returncode == 0 and b"question" in helped.stdout


def test_without_the_stack_commands_say_how_to_start_it(stack: Stack) -> None:
    stack.process.send_signal(signal.SIGINT)
    stack.process.wait(60)
    assert not (stack.var_dir / "stack.env").exists()
    for command in (["check_storage"], ["changepassword", "admin"], ["backup"]):
        refused = manage(stack.var_dir, *command)
        message = refused.stderr.decode().strip()
        assert refused.returncode == 1, command
        assert "start it with `make run`" in message, message
        assert len(message.splitlines()) == 1, message
    offline = manage(stack.var_dir, "makemigrations", "--check", "--dry-run")
    assert offline.returncode == 0, offline.stderr.decode()


def test_given_services_are_used_and_not_started(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DATABASE_URL, REDIS_URL and LLM_BASE_URL, singly or together: each is
    used as given and no process is started for it."""
    from config.launcher import EmbeddedServices, LauncherError

    given = {
        "DATABASE_URL": "postgresql://someone@db.example/archivist",
        "REDIS_URL": "redis://cache.example:6379/0",
        "LLM_BASE_URL": "http://gpu.example:8000/v1",
    }
    for name, url in given.items():
        monkeypatch.setenv(name, url)
    services = EmbeddedServices(var_dir=tmp_path)
    assert services.start_postgres() == given["DATABASE_URL"]
    assert services.start_redis() == given["REDIS_URL"]
    assert services.start_llm(wait=False) == given["LLM_BASE_URL"]
    assert services.processes == []
    assert services.find_process("llm") is None
    with pytest.raises(LauncherError, match="No process named 'llm'"):
        services.process("llm")
