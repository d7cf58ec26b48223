"""What vLLM itself reports about the requests that ``vllm_client.py`` times:
its engine's own counters and histograms (``/metrics``), and its benchmark
client's time to first token for the same request."""

from __future__ import annotations

import re
from typing import Any

import httpx


def _scrape(root: str) -> str:
    return httpx.get(f"{root}/metrics", timeout=10).text


def metrics(root: str) -> dict[str, float]:
    """vLLM's Prometheus counters and histogram sums, by name (labels dropped)."""
    return _counters(_scrape(root))


def readings(root: str) -> tuple[dict[str, float], dict[float, float]]:
    """``metrics`` and the time-to-first-token histogram's buckets, from one
    reading of ``/metrics``."""
    text = _scrape(root)
    return _counters(text), _ttft_buckets(text)


def _counters(text: str) -> dict[str, float]:
    values: dict[str, float] = {}
    for line in text.splitlines():
        match = re.match(r"^(vllm:[a-z_]+)(?:\{[^}]*\})? ([0-9.eE+-]+)$", line)
        if match:
            values[match[1]] = values.get(match[1], 0.0) + float(match[2])
    return values


def _ttft_buckets(text: str) -> dict[float, float]:
    """vLLM's own time-to-first-token histogram: answers counted at or under
    each bucket's bound, in seconds."""
    counts: dict[float, float] = {}
    for line in text.splitlines():
        match = re.match(
            r'^vllm:time_to_first_token_seconds_bucket\{[^}]*le="([0-9.eE+-]+)"[^}]*\} '
            r"([0-9.eE+-]+)$",
            line,
        )
        if match:
            bound = float(match[1])
            counts[bound] = counts.get(bound, 0.0) + float(match[2])
    return counts


def bucket_p95(before: dict[float, float], after: dict[float, float]) -> float | None:
    """The bound of the bucket holding vLLM's own p95 between two readings
    (an upper bound: the histogram's buckets are coarse)."""
    deltas = {bound: after[bound] - before.get(bound, 0.0) for bound in after}
    total = max(deltas.values(), default=0.0)
    for bound in sorted(deltas):
        if total and deltas[bound] >= 0.95 * total:
            return bound
    return None


def server_side(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """vLLM's own mean TTFT and time per output token between two readings."""

    def mean(name: str) -> float:
        count = after.get(f"{name}_count", 0) - before.get(f"{name}_count", 0)
        total = after.get(f"{name}_sum", 0) - before.get(f"{name}_sum", 0)
        return total / count if count else float("nan")

    tpot = mean("vllm:time_per_output_token_seconds")
    if tpot != tpot:  # newer vLLM names it inter-token latency
        tpot = mean("vllm:inter_token_latency_seconds")
    return {
        "ttft_s": mean("vllm:time_to_first_token_seconds"),
        "tpot_s": tpot,
        "decode_tokens_per_s": 1 / tpot if tpot == tpot and tpot > 0 else float("nan"),
    }


class VllmBenchClient:
    """vLLM's own benchmark client: the request function ``vllm bench serve``
    times chat answers with (its time to first token is the first streamed
    chunk with choices), on one aiohttp session kept open as that tool keeps
    it. Only on the GPU machine, where vLLM is installed."""

    def __init__(self, base_url: str, model: str) -> None:
        import asyncio

        import aiohttp

        self.url = f"{base_url}/chat/completions"
        self.model = model
        self.loop = asyncio.new_event_loop()
        self.session = self.loop.run_until_complete(self._session(aiohttp))

    @staticmethod
    async def _session(aiohttp: Any) -> Any:
        connector = aiohttp.TCPConnector(keepalive_timeout=60, force_close=False)
        return aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=600)
        )

    def ttft(self, messages: list[dict[str, str]], max_tokens: int) -> float:
        from vllm.benchmarks.lib.endpoint_request_func import (
            RequestFuncInput,
            async_request_openai_chat_completions,
        )

        request = RequestFuncInput(
            prompt="",
            api_url=self.url,
            prompt_len=0,
            output_len=max_tokens,
            model=self.model,
            chat_messages=messages,
            extra_body={"temperature": 0},  # as the project's client asks
        )
        ask = async_request_openai_chat_completions
        output = self.loop.run_until_complete(ask(request, self.session))
        if not output.success:  # a kept-alive connection the server had closed
            output = self.loop.run_until_complete(ask(request, self.session))
        if not output.success:
            raise RuntimeError(f"vLLM's benchmark request failed: {output.error}")
        return float(output.ttft)

    def close(self) -> None:
        self.loop.run_until_complete(self.session.close())
        self.loop.close()
