"""Fault injection for the LLM client: a local HTTP server that behaves like
a broken OpenAI-compatible server (hangs, stalls mid-stream, refuses). The
real llama.cpp server is used for everything that works."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from config.launcher import free_port
from inference.cache import AnswerCache
from tests.conftest import World
from tests.harness import embedded_services
from tests.ingest.conftest import upload_bytes, wait_final


class FaultyLLM(BaseHTTPRequestHandler):
    # behaviour: "hang" (never answers), "stall" (two tokens, then silence),
    # "error" (HTTP 500), "slow" (a token every 0.2 s for a long time),
    # "empty" (a reply of whitespace), "brief" (``brief_tokens`` tokens,
    # ``brief_delay`` seconds apart, then the end; one request at a time, as
    # a CPU llama.cpp server answers).
    behaviour = "hang"
    disconnected = threading.Event()
    brief_tokens = 5
    brief_delay = 0.1
    one_at_a_time = threading.Lock()
    concurrent_seen = 0

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.behaviour in ("empty", "brief"):
            self._short_reply()
            return
        if self.behaviour == "hang":
            time.sleep(30)
            return
        if self.behaviour == "error":
            body = b'{"error": {"message": "model crashed"}}'
            self.send_response(500)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        try:
            for index in range(2 if self.behaviour == "stall" else 1000):
                chunk = {"choices": [{"delta": {"content": f"word{index} "}}]}
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                self.wfile.flush()
                time.sleep(0.2)
            time.sleep(30)
        except (BrokenPipeError, ConnectionResetError):
            type(self).disconnected.set()

    def _short_reply(self) -> None:
        handler = type(self)
        if not handler.one_at_a_time.acquire(blocking=False):
            # Two requests at once: the ask queue let too many through.
            handler.concurrent_seen += 1
            handler.one_at_a_time.acquire()
        try:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            pieces = (
                ["  ", "\n"]
                if self.behaviour == "empty"
                else [f"word{i} " for i in range(self.brief_tokens)]
            )
            for piece in pieces:
                chunk = {"choices": [{"delta": {"content": piece}}]}
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                self.wfile.flush()
                time.sleep(self.brief_delay)
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            handler.disconnected.set()
        finally:
            handler.one_at_a_time.release()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def faulty_llm() -> Iterator[type[FaultyLLM]]:
    """Yields the handler class: set ``behaviour``; ``url`` is its base URL."""

    class Handler(FaultyLLM):
        disconnected = threading.Event()
        one_at_a_time = threading.Lock()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    Handler.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    yield Handler
    server.shutdown()


@pytest.fixture
def dead_llm_url() -> str:
    """A port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


ZEPHYR = (
    "Zephyr headphones refund policy\n\n"
    "Customers may return Zephyr headphones within 45 days of purchase for a full "
    "refund. The receipt is required."
)
ORION = (
    "Orion speakers refund policy\n\n"
    "Orion speakers can be returned within 14 days of delivery. Opened speakers "
    "get store credit instead of a refund."
)
NIGHTINGALE = (
    "Project Nightingale budget\n\n"
    "The Nightingale acquisition budget is 12 million euros, approved by the board "
    "in March. Nightingale is confidential."
)


@pytest.fixture
def library(ingest_world: World, settings: Any) -> World:
    settings.ANSWER_MAX_TOKENS = 48
    AnswerCache().purge()
    world = ingest_world
    outcomes = [
        upload_bytes(world, world.collection_a, "zephyr.txt", ZEPHYR.encode()),
        upload_bytes(world, world.collection_a, "orion.txt", ORION.encode()),
        upload_bytes(
            world, world.collection_b, "nightingale.txt", NIGHTINGALE.encode()
        ),
    ]
    ids = [o.document.pk for o in outcomes]
    documents = wait_final(ids, timeout=240)
    assert all(d.status == "ready" for d in documents.values()), documents
    world.zephyr, world.orion, world.nightingale = (documents[i] for i in ids)
    return world


@pytest.fixture
def asgi_server(library: World) -> Iterator[Callable[..., str]]:
    """Starts the real web server (uvicorn, as ``make run`` does) on the test
    database, with the settings given; returns its base URL."""
    from tests.conftest import _test_database_url

    started = []

    def start(**settings: str) -> str:
        services = embedded_services()
        port = free_port()
        env = services.child_env(
            DATABASE_URL=_test_database_url(),
            API_RATE_LIMIT="1000000/min",
            ASK_RATE_LIMIT="1000000/min",
            **settings,
        )
        process = services.start_web(host="127.0.0.1", port=port, env=env)
        started.append(process)
        process.wait_ready()
        return f"http://127.0.0.1:{port}"

    yield start
    services = embedded_services()
    for process in started:
        process.stop()
        services.processes.remove(process)
