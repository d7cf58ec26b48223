"""The launcher's process plumbing: free ports, readiness checks, and the
children it starts, watches and stops. Loads no Django settings."""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger("archivist.launcher")

BASE_DIR = Path(__file__).resolve().parent.parent
RESTART_DELAY_SECONDS = 5.0
MAX_RESTARTS = 5


class LauncherError(RuntimeError):
    """A service could not be started; the message says why and what to do."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def http_ok(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - loopback URLs we built
            return bool(200 <= response.status < 300)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def tcp_ok(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_until(
    check: Callable[[], bool], *, timeout: float, what: str, log: Path | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    tail = ""
    if log is not None and log.exists():
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
        tail = f"\nLast lines of {log}:\n{tail}"
    raise LauncherError(f"{what} did not become ready within {timeout:.0f}s.{tail}")


def package_file(package: str, *relative: str) -> Path:
    """Path of a file inside an installed package, without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise LauncherError(
            f"The package {package!r} is not installed; run `make install`."
        )
    return Path(next(iter(spec.submodule_search_locations))).joinpath(*relative)


@dataclass
class ManagedProcess:
    """A child process the launcher owns: started in its own session (so a
    terminal's Ctrl-C reaches only the launcher, which stops children in
    order), logged to a file, restarted if it dies while supervised."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    ready: Callable[[], bool] | None = None
    ready_timeout: float = 60.0
    cwd: Path = BASE_DIR
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    stopping: bool = False

    def start(self, *, wait: bool = True) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.argv,
            env=self.env,
            cwd=self.cwd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        if wait:
            self.wait_ready()

    def wait_ready(self) -> None:
        if self.ready is None:
            return
        ready = self.ready

        def check() -> bool:
            if not self.alive():
                code = self.process.returncode if self.process else None
                raise LauncherError(
                    f"{self.name} exited with code {code} while starting; see {self.log_path}"
                )
            return ready()

        wait_until(check, timeout=self.ready_timeout, what=self.name, log=self.log_path)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def kill_hard(self) -> None:
        """SIGKILL the whole process group (tests use this to simulate a crash)."""
        if self.process is not None and self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def stop(self, timeout: float = 15.0) -> None:
        self.stopping = True
        if self.process is None or not self.alive():
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            logger.warning("%s did not stop in %ss; killing it", self.name, timeout)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(5)
