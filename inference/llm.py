"""The LLM client: an OpenAI-compatible chat completions API (vLLM in
production, llama.cpp here), streamed, with a deadline for every phase.

httpx's read timeout applies to each socket read, so it cannot tell "the
first token is late" from "the stream stalled" or bound the whole answer.
The stream is therefore read by a helper thread into a queue, and the caller
waits on the queue with the deadline of the phase it is in; when a deadline
passes, or the caller stops iterating (the browser went away), the response
is closed, which makes the server stop generating.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import httpx
from django.conf import settings

from core.metrics import LLM_ERRORS

logger = logging.getLogger(__name__)


class LLMError(Exception):
    """The LLM failed; ``str(exc)`` is meant for the user, ``kind`` for metrics."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind
        # Every failure is raised through here once, so it is counted here.
        LLM_ERRORS.labels(kind=kind).inc()


@dataclass(frozen=True)
class LLMTimeouts:
    connect: float
    first_token: float
    between_tokens: float
    total: float

    @classmethod
    def from_settings(cls) -> LLMTimeouts:
        return cls(
            connect=settings.LLM_CONNECT_TIMEOUT,
            first_token=settings.LLM_FIRST_TOKEN_TIMEOUT,
            between_tokens=settings.LLM_BETWEEN_TOKENS_TIMEOUT,
            total=settings.LLM_TOTAL_TIMEOUT,
        )


_END = object()


class LLMClient:
    def __init__(
        self,
        base_url: str | None = None,
        model: str | None = None,
        api_key: str | None = None,
        timeouts: LLMTimeouts | None = None,
    ) -> None:
        self.base_url = (base_url or settings.LLM_BASE_URL).rstrip("/")
        self.model = model or settings.LLM_MODEL
        self.timeouts = timeouts or LLMTimeouts.from_settings()
        key = api_key if api_key is not None else settings.LLM_API_KEY
        self._headers = {"Authorization": f"Bearer {key}"} if key else {}

    def _timeout(self, read_timeout: float) -> httpx.Timeout:
        return httpx.Timeout(
            connect=self.timeouts.connect,
            read=read_timeout,
            write=self.timeouts.connect,
            pool=self.timeouts.connect,
        )

    def stream_chat(
        self,
        messages: list[dict[str, str]],
        *,
        max_tokens: int,
        temperature: float = 0.2,
        first_token_timeout: float | None = None,
    ) -> Iterator[str]:
        """Yield the answer's text pieces as they arrive. Raises LLMError when
        the server is down, late, stalls or fails; closing the iterator early
        stops the generation. ``first_token_timeout`` replaces the configured
        deadline for the first token (a long prompt needs longer)."""
        pieces: queue.Queue[Any] = queue.Queue()
        stop = threading.Event()
        response_box: list[httpx.Response] = []
        payload = {
            "model": self.model,
            "messages": messages,
            "max_tokens": max_tokens,
            "temperature": temperature,
            "stream": True,
        }

        def read() -> None:
            try:
                with pooled_client().stream(
                    "POST",
                    f"{self.base_url}/chat/completions",
                    json=payload,
                    headers=self._headers,
                    timeout=self._timeout(self.timeouts.total),
                ) as response:
                    response_box.append(response)
                    if response.status_code >= 400:
                        body = response.read().decode(errors="replace")
                        pieces.put(
                            LLMError(
                                refusal_message(response.status_code, body),
                                "http_error",
                            )
                        )
                        return
                    for line in response.iter_lines():
                        if stop.is_set():
                            return
                        text = _delta_text(line)
                        if text is None:
                            continue
                        if text == "[DONE]":
                            break
                        pieces.put(text)
                pieces.put(_END)
            except httpx.ConnectError:
                pieces.put(
                    LLMError(
                        "The language model server cannot be reached.", "unavailable"
                    )
                )
            except httpx.TimeoutException:
                pieces.put(
                    LLMError("The language model did not answer in time.", "timeout")
                )
            except (httpx.HTTPError, ValueError) as exc:
                if not stop.is_set():
                    pieces.put(
                        LLMError(
                            f"The language model connection broke: {exc}", "broken"
                        )
                    )

        reader = threading.Thread(target=read, name="llm-stream", daemon=True)
        started = time.monotonic()
        reader.start()
        first = True
        try:
            while True:
                phase_timeout = (
                    (first_token_timeout or self.timeouts.first_token)
                    if first
                    else self.timeouts.between_tokens
                )
                remaining_total = self.timeouts.total - (time.monotonic() - started)
                if remaining_total <= 0:
                    raise LLMError(
                        "The answer took too long and was stopped.", "total_timeout"
                    )
                try:
                    item = pieces.get(timeout=min(phase_timeout, remaining_total))
                except queue.Empty:
                    if first:
                        raise LLMError(
                            "The language model did not start answering in time.",
                            "first_token_timeout",
                        ) from None
                    if time.monotonic() - started >= self.timeouts.total:
                        raise LLMError(
                            "The answer took too long and was stopped.", "total_timeout"
                        ) from None
                    raise LLMError(
                        "The language model stopped in the middle of its answer.",
                        "stalled",
                    ) from None
                if item is _END:
                    return
                if isinstance(item, LLMError):
                    raise item
                first = False
                yield item
        finally:
            stop.set()
            for response in response_box:
                # Closing the stream makes the server stop generating.
                try:
                    response.close()
                except Exception:
                    logger.debug("closing the LLM stream failed", exc_info=True)

    def complete(
        self,
        messages: list[dict[str, str]],
        *,
        max_tokens: int,
        temperature: float = 0.2,
    ) -> str:
        """The whole answer as one string (same deadlines as streaming)."""
        return "".join(
            self.stream_chat(messages, max_tokens=max_tokens, temperature=temperature)
        )

    def count_tokens(self, text: str) -> int:
        """Tokens by the model's own tokenizer (``/tokenize`` of llama.cpp and
        vLLM); a conservative estimate when the server has no such endpoint."""
        root = self.base_url.removesuffix("/v1")
        try:
            response = pooled_client().post(
                f"{root}/tokenize",
                json={"content": text, "prompt": text, "model": self.model},
                headers=self._headers,
                timeout=self.timeouts.connect + 5,
            )
            if response.status_code == 200:
                data = response.json()
                tokens = data.get("tokens")
                if isinstance(tokens, list):
                    return len(tokens)
                if isinstance(data.get("count"), int):
                    return int(data["count"])
        except (httpx.HTTPError, ValueError):
            logger.info("The LLM server has no /tokenize; estimating token counts")
        return estimate_tokens(text)


def pooled_client() -> httpx.Client:
    """One connection pool per process for every call to the LLM server
    (docs/benchmarks.md: a client per answer cost more than vLLM's own time
    to first token). Keyed by process, so a forked worker never shares the
    parent's connections."""
    return _pool_of(os.getpid())


@lru_cache(maxsize=1)
def _pool_of(pid: int) -> httpx.Client:
    return httpx.Client(limits=httpx.Limits(max_connections=256))


def refusal_message(status: int, body: str) -> str:
    """The server's own reason for refusing a request (OpenAI's and vLLM's
    ``{"error": {"message": …}}``, older vLLM's ``{"message": …}``, or
    llama.cpp's), else the start of the body."""
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    reason = body[:300]
    if isinstance(data, dict):
        error = data.get("error")
        message = error.get("message") if isinstance(error, dict) else error
        reason = str(message or data.get("message") or data.get("detail") or reason)
    return f"The language model refused the request ({status}): {reason[:500]}"


def estimate_tokens(text: str) -> int:
    """An over-estimate: about 3 characters a token for Latin text, one per
    CJK character."""
    cjk = sum(1 for char in text if "\u3400" <= char <= "\u9fff")
    return cjk + (len(text) - cjk) // 3 + 1


def _delta_text(line: str) -> str | None:
    if not line.startswith("data:"):
        return None
    data = line[5:].strip()
    if data == "[DONE]":
        return data
    try:
        event = json.loads(data)
    except ValueError:
        return None
    if "error" in event:
        message = (
            event["error"].get("message")
            if isinstance(event["error"], dict)
            else event["error"]
        )
        raise ValueError(f"the server reported an error: {message}")
    choices = event.get("choices") or []
    if not choices:
        return None
    delta = choices[0].get("delta") or {}
    return delta.get("content") or None
