"""The LLM client against vLLM's protocol, as recorded from vLLM 0.26.0 on a
GPU (tests/inference/recorded_vllm, bench/gpu): a local server replays the
recorded bodies, so what differs from llama.cpp stays covered on the CPU."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from inference.llm import LLMClient, LLMError, LLMTimeouts, pooled_client

RECORDED = Path(__file__).resolve().parent / "recorded_vllm"
TIMEOUTS = LLMTimeouts(connect=2, first_token=5, between_tokens=5, total=10)
MESSAGES = [{"role": "user", "content": "How does apt check packages?"}]


class RecordedVLLM(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    requests_seen: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests_seen.append({"path": self.path, **body})
        if self.path == "/tokenize":
            self._send(
                200, "application/json", (RECORDED / "tokenize.json").read_bytes()
            )
        elif body["max_tokens"] > 1000:
            self._send(
                400,
                "application/json",
                (RECORDED / "over_long_prompt.json").read_bytes(),
            )
        else:
            self._send(
                200, "text/event-stream", (RECORDED / "chat_stream.txt").read_bytes()
            )

    def _send(self, status: int, kind: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def vllm_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), RecordedVLLM)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    RecordedVLLM.requests_seen = []
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()


def _recorded_text() -> str:
    pieces = []
    for line in (RECORDED / "chat_stream.txt").read_text().splitlines():
        if line.startswith("data: {"):
            pieces.append(
                json.loads(line[6:])["choices"][0]["delta"].get("content", "")
            )
    return "".join(pieces)


def test_stream_skips_the_role_chunk_and_reads_every_token(vllm_url: str) -> None:
    client = LLMClient(base_url=vllm_url, model="archivist-llm", timeouts=TIMEOUTS)
    pieces = list(client.stream_chat(MESSAGES, max_tokens=128))
    # vLLM opens with {"role": "assistant", "content": ""} and ends with an
    # empty content carrying finish_reason: neither is a piece of the answer.
    assert "" not in pieces
    assert "".join(pieces) == _recorded_text()
    assert _recorded_text().startswith("apt checks")


def test_tokens_are_counted_by_vllms_tokenize(vllm_url: str) -> None:
    client = LLMClient(base_url=vllm_url, model="archivist-llm", timeouts=TIMEOUTS)
    assert client.count_tokens("anything") == 100  # the recorded count
    sent = RecordedVLLM.requests_seen[-1]
    assert sent["path"] == "/tokenize" and sent["model"] == "archivist-llm"


def test_a_prompt_past_the_context_says_why_in_words(vllm_url: str) -> None:
    client = LLMClient(base_url=vllm_url, model="archivist-llm", timeouts=TIMEOUTS)
    with pytest.raises(LLMError) as failure:
        list(client.stream_chat(MESSAGES, max_tokens=8192))
    assert failure.value.kind == "http_error"
    message = str(failure.value)
    assert message.startswith("The language model refused the request (400): ")
    assert "maximum context length is 8192 tokens" in message
    assert '{"error"' not in message


def test_one_connection_pool_per_process(vllm_url: str) -> None:
    assert pooled_client() is pooled_client()
    first = LLMClient(base_url=vllm_url, model="archivist-llm", timeouts=TIMEOUTS)
    list(first.stream_chat(MESSAGES, max_tokens=16))
    list(first.stream_chat(MESSAGES, max_tokens=16))
    from inference import llm

    assert llm._pool_of(os.getpid()) is pooled_client()
