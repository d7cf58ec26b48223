"""Where the running stack's services are, for commands run beside it.

``make run`` starts PostgreSQL on a socket under ``var/``, Redis and the LLM
server on ports chosen at start-up. The launcher writes their addresses to
``var/stack.env`` (readable by its owner only) once they are up, and removes
the file when it stops. ``manage.py`` reads it for every variable the
environment does not set, so ``manage.py changepassword admin`` works from a
second shell. This module must not load Django: it runs before settings.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
FILE_NAME = "stack.env"
# What a command beside the stack needs to reach it.
SHARED = ("DATABASE_URL", "REDIS_URL", "LLM_BASE_URL", "LLM_MODEL", "EMBEDDING_MODEL")
NOT_RUNNING = (
    "Archivist is not running, so {what} cannot be reached: start it with "
    "`make run` (or set DATABASE_URL, REDIS_URL and LLM_BASE_URL to services "
    "that are running)."
)


def var_dir(environ: Mapping[str, str] = os.environ) -> Path:
    return Path(environ.get("ARCHIVIST_VAR_DIR", str(BASE_DIR / "var")))


def stack_file(environ: Mapping[str, str] = os.environ) -> Path:
    return var_dir(environ) / FILE_NAME


def write(values: Mapping[str, str], *, directory: Path) -> Path:
    """Record the running services' addresses, for the owner's eyes only."""
    path = directory / FILE_NAME
    lines = [f"{name}={values[name]}" for name in SHARED if values.get(name)]
    lines.append(f"LAUNCHER_PID={os.getpid()}")
    temporary = path.with_suffix(".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    temporary.replace(path)
    return path


def remove(directory: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        (directory / FILE_NAME).unlink()


def read(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The recorded addresses, if a launcher that is still alive wrote them."""
    path = stack_file(environ)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return {}
    values = dict(
        line.split("=", 1) for line in text.splitlines() if "=" in line.strip()
    )
    pid = values.pop("LAUNCHER_PID", "")
    if not pid.isdigit() or not _alive(int(pid)):
        return {}  # left by a launcher that was killed
    return {name: value for name, value in values.items() if name in SHARED}


def apply(environ: dict[str, str] | os._Environ[str] = os.environ) -> bool:
    """Fill in what the environment does not set from the running stack.
    True when a running stack was found."""
    values = read(environ)
    for name, value in values.items():
        environ.setdefault(name, value)
    return bool(values)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
