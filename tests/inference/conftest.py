"""Fault injection for the LLM client: a local HTTP server that behaves like
a broken OpenAI-compatible server (hangs, stalls mid-stream, refuses). The
real llama.cpp server is used for everything that works."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


class FaultyLLM(BaseHTTPRequestHandler):
    # behaviour: "hang" (never answers), "stall" (two tokens, then silence),
    # "error" (HTTP 500), "slow" (a token every 0.2 s for a long time).
    behaviour = "hang"
    disconnected = threading.Event()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
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

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def faulty_llm() -> Iterator[type[FaultyLLM]]:
    """Yields the handler class: set ``behaviour``; ``url`` is its base URL."""

    class Handler(FaultyLLM):
        disconnected = threading.Event()

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
