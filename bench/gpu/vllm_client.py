"""The project's LLM client against a running vLLM server, on the GPU machine.

Exercises what differs between OpenAI-compatible servers (token counting,
streaming chunks, length limits, an over-long prompt, a client that goes
away, the deadlines) and measures vLLM's own time to first token and decode
rate (from its /metrics) next to the client's, at 1, 4 and 16 concurrent
streams. Writes ``results.json`` and the raw responses it saw into the
folder given (``$OUT`` on the device), so CPU-side tests can replay them.

    python bench/gpu/vllm_client.py --base-url http://127.0.0.1:8000/v1 \
        --model archivist-llm --out "$OUT"
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from bench.gpu.vllm_own import (  # noqa: E402
    VllmBenchClient,
    bucket_p95,
    metrics,
    readings,
    server_side,
)

FILLER = (
    "Debian keeps its packages in archives signed by the project. The apt tool "
    "downloads package lists, checks their signatures and installs what is asked, "
    "with its dependencies. "
)
RAW_CLIENT = httpx.Client(timeout=60, limits=httpx.Limits(max_connections=64))
# Asks for a long answer, as real answers are: the 128 tokens allowed are
# used, so answers overlap when many people ask at once.
QUESTION = (
    "Using only the passage, explain in detail, in about ten sentences, how apt "
    "finds, checks and installs packages."
)


SETTINGS: tuple[str, str] = ("", "")
# Answers timed at each concurrency level: a p95 is read from them.
ANSWERS = int(os.environ.get("ANSWERS_PER_LEVEL", "48"))


def configure(base_url: str, model: str) -> None:
    global SETTINGS
    from django.conf import settings

    SETTINGS = (base_url, model)

    settings.configure(
        LLM_BASE_URL=base_url,
        LLM_MODEL=model,
        LLM_API_KEY=None,
        LLM_CONNECT_TIMEOUT=3.0,
        LLM_FIRST_TOKEN_TIMEOUT=60.0,
        LLM_BETWEEN_TOKENS_TIMEOUT=15.0,
        LLM_TOTAL_TIMEOUT=180.0,
    )


def prompt(repeats: int, distinct: bool = False) -> list[dict[str, str]]:
    """The instructions, a passage of ``repeats`` sentences and the question.

    ``distinct`` starts the passage with a marker of its own, as every
    answer's passages differ: vLLM's prefix cache then holds the fixed
    instructions only, and the prompt's prefill is measured, not skipped.
    """
    marker = f"Passage {uuid.uuid4().hex}.\n" if distinct else ""
    return [
        {"role": "system", "content": "Answer from the passage only."},
        {"role": "user", "content": marker + FILLER * repeats + "\n\n" + QUESTION},
    ]


def raw_stream(
    base_url: str, model: str, messages: list[dict[str, str]], max_tokens: int
) -> dict[str, Any]:
    """The same request without the project's client: the server's time to
    first content as a bare HTTP client sees it, and the chunks as sent."""
    payload = {
        "model": model,
        "messages": messages,
        "max_tokens": max_tokens,
        "temperature": 0,
        "stream": True,
    }
    started = time.perf_counter()
    first = None
    lines: list[str] = []
    with RAW_CLIENT.stream(
        "POST", f"{base_url}/chat/completions", json=payload
    ) as response:
        for line in response.iter_lines():
            lines.append(line)
            if (
                first is None
                and '"content":"' in line.replace(" ", "")
                and ('"content":""' not in line.replace(" ", ""))
            ):
                first = time.perf_counter() - started
    return {"ttft_s": first, "total_s": time.perf_counter() - started, "lines": lines}


def client_stream(messages: list[dict[str, str]], max_tokens: int) -> dict[str, Any]:
    from inference.llm import LLMClient

    client = LLMClient()
    started = time.perf_counter()
    first = None
    pieces: list[str] = []
    for piece in client.stream_chat(messages, max_tokens=max_tokens, temperature=0):
        if first is None:
            first = time.perf_counter() - started
        pieces.append(piece)
    total = time.perf_counter() - started
    text = "".join(pieces)
    tokens = client.count_tokens(text) if text else 0
    decode = (
        (tokens - 1) / (total - first)
        if first and tokens > 1 and total > first
        else 0.0
    )
    return {
        "ttft_s": first,
        "total_s": total,
        "text": text,
        "tokens": tokens,
        "tokens_per_s": decode,
    }


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def answer_prompt(repeats: int) -> list[dict[str, str]]:
    """The product's own answer prompt: its instructions and worked examples
    (a prefix that vLLM's cache keeps for every answer), then passages that
    differ per answer, and the question."""
    from inference import prompts as product_prompts

    marker = f"Passage {uuid.uuid4().hex}.\n"
    source = product_prompts.SourceText(
        number=1,
        title="Debian reference",
        page=None,
        section="",
        text=marker + FILLER * repeats,
    )
    return product_prompts.answer_messages(QUESTION, [source], "en", examples=True)


def prompts(repeats: int, kind: str) -> Callable[[], list[dict[str, str]]]:
    """Each call's prompt: a new one every time (``distinct``), always the
    same (``same``), or the product's answer prompt (``answer``)."""
    if kind == "answer":
        return lambda: answer_prompt(repeats)
    fixed = prompt(repeats)
    return (lambda: prompt(repeats, True)) if kind == "distinct" else (lambda: fixed)


@dataclass(frozen=True)
class Level:
    """One concurrency level's askers, as each thread or process runs them."""

    pattern: str  # "burst" or "sustained"
    streams: int
    repeats: int
    kind: str
    max_tokens: int
    answer_s: float
    t0: float


def run_askers(
    root: str,
    pattern: str,
    streams: int,
    repeats: int,
    kind: str,
    max_tokens: int,
    answer_s: float = 0.0,
    processes: int = 1,
) -> dict[str, Any]:
    """One level: ``streams`` askers in ``pattern`` (``burst`` or
    ``sustained``), in one process's threads or spread over ``processes``
    (as a deployment spreads answers over its web processes: the threads of
    one process share its interpreter lock, and at 16 streams parsing the
    others' tokens delays a new answer's first one); with vLLM's own time to
    first token over the same span."""
    before, buckets = readings(root)
    # Processes first import the client; the level's clock starts after.
    t0 = time.time() + (10 if processes > 1 else 0)
    level = Level(pattern, streams, repeats, kind, max_tokens, answer_s, t0)
    if processes <= 1:
        start = threading.Barrier(streams) if pattern == "burst" else None
        timed = ask_in_threads(level, list(range(streams)), start)
    else:
        timed = ask_in_processes(level, processes)
    after, after_buckets = readings(root)
    summary = timed.summary(time.time() - t0, server_side(before, after))
    summary["vllm_ttft_p95_bucket_s"] = bucket_p95(buckets, after_buckets)
    summary["asker_processes"] = processes
    return summary


def ask_in_threads(level: Level, indices: list[int], start: Any) -> Timed:
    """The askers ``indices`` of ``level``, a thread each.

    ``burst``: all start in the same instant (``start``, a barrier), in rounds
    until at least ``ANSWERS`` answers have been timed (the worst case).
    ``sustained``: as vLLM's own benchmark counts concurrency, each asker asks
    again as soon as its answer ends. The askers start ``answer_s / streams``
    apart from ``t0`` (answers of equal length would otherwise stay in
    lockstep, a burst at every turn), and each one's first answer, before
    all are running, is not timed."""
    streams = level.streams
    timed = Timed(streams)
    next_prompt = prompts(level.repeats, level.kind)

    def burst_asker(index: int) -> None:
        time.sleep(max(0.0, level.t0 - time.time()))
        for _ in range(max(1, ANSWERS // streams)):
            messages = next_prompt()
            start.wait()
            timed.ask(messages, level.max_tokens)

    def sustained_asker(index: int) -> None:
        offset = index * level.answer_s / streams
        time.sleep(max(0.0, level.t0 + offset - time.time()))
        for turn in range(max(3, ANSWERS // streams) + 1):
            timed.ask(next_prompt(), level.max_tokens, keep=turn > 0)

    asker = burst_asker if level.pattern == "burst" else sustained_asker
    threads = [threading.Thread(target=asker, args=(i,)) for i in indices]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return timed


def asker_process(
    settings: tuple[str, str], queue: Any, level: Level, indices: list[int], start: Any
) -> None:
    """A process's share of a level's askers; its answers go to ``queue``."""
    configure(*settings)
    timed = ask_in_threads(level, indices, start)
    queue.put((timed.results, timed.failures, timed.tokens))


def ask_in_processes(level: Level, processes: int) -> Timed:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    start = context.Barrier(level.streams) if level.pattern == "burst" else None
    workers = [
        context.Process(
            target=asker_process,
            args=(
                SETTINGS,
                queue,
                level,
                list(range(p, level.streams, processes)),
                start,
            ),
        )
        for p in range(processes)
    ]
    for worker in workers:
        worker.start()
    timed = Timed(level.streams)
    for _ in workers:
        results, failures, tokens = queue.get()
        timed.results.extend(results)
        timed.failures.extend(failures)
        timed.tokens += tokens
    for worker in workers:
        worker.join()
    return timed


class Timed:
    """The answers of one concurrency level, collected from many threads."""

    def __init__(self, streams: int) -> None:
        self.streams = streams
        self.results: list[dict[str, Any]] = []
        self.failures: list[str] = []
        self.tokens = 0
        self.lock = threading.Lock()

    def ask(
        self, messages: list[dict[str, str]], max_tokens: int, keep: bool = True
    ) -> None:
        try:
            outcome = client_stream(messages, max_tokens)
        except Exception as error:  # reported, not hidden
            with self.lock:
                self.failures.append(f"{type(error).__name__}: {error}")
            return
        with self.lock:
            self.tokens += outcome["tokens"]
            if keep:
                self.results.append(outcome)

    def summary(self, wall_s: float, own: dict[str, float]) -> dict[str, Any]:
        ttfts = [r["ttft_s"] for r in self.results if r["ttft_s"] is not None]
        rates = [r["tokens_per_s"] for r in self.results if r["tokens_per_s"]]
        return {
            "streams": self.streams,
            "answers_timed": len(self.results),
            "failures": self.failures[:3],
            "ttft_p50_s": statistics.median(ttfts),
            "ttft_p95_s": percentile(ttfts, 0.95),
            "tokens_per_s_p50": statistics.median(rates) if rates else 0.0,
            "aggregate_tokens_per_s": self.tokens / wall_s,
            "vllm_ttft_mean_s": own["ttft_s"],
        }


def checks(
    base_url: str, model: str, root: str, out: Path, max_model_len: int
) -> dict[str, Any]:
    from inference.llm import LLMClient, LLMError, LLMTimeouts, estimate_tokens

    found: dict[str, Any] = {}
    client = LLMClient()
    sample = FILLER * 3
    tokenize = httpx.post(
        f"{root}/tokenize",
        json={"content": sample, "prompt": sample, "model": model},
        timeout=10,
    )
    (out / "tokenize.json").write_text(tokenize.text)
    found["tokenize_status"] = tokenize.status_code
    found["count_tokens"] = client.count_tokens(sample)
    found["estimate_tokens"] = estimate_tokens(sample)

    limited = client_stream(prompt(1), max_tokens=8)
    found["max_tokens_8_gave"] = limited["tokens"]

    too_long = prompt(max_model_len // 20)
    try:
        "".join(client.stream_chat(too_long, max_tokens=64))
        found["over_long_prompt"] = "no error"
    except LLMError as error:
        found["over_long_prompt"] = f"{error.kind}: {error}"
    raw = httpx.post(
        f"{base_url}/chat/completions",
        json={"model": model, "messages": too_long, "max_tokens": 64, "stream": True},
        timeout=60,
    )
    (out / "over_long_prompt.txt").write_text(f"{raw.status_code}\n{raw.text}")

    over_budget = prompt(max_model_len // 60)
    try:
        "".join(client.stream_chat(over_budget, max_tokens=max_model_len))
        found["max_tokens_past_context"] = "no error"
    except LLMError as error:
        found["max_tokens_past_context"] = f"{error.kind}: {error}"

    # A client that goes away: generation must stop on the server.
    before = metrics(root)
    stream = client.stream_chat(prompt(2), max_tokens=4000, temperature=0.8)
    for _, _piece in zip(range(5), stream, strict=False):
        pass
    stream.close()
    time.sleep(1.0)
    after = metrics(root)
    time.sleep(1.0)
    later = metrics(root)
    found["disconnect"] = {
        "running_after_close": later.get("vllm:num_requests_running", -1),
        "generated_tokens_after_close": later.get("vllm:generation_tokens_total", 0)
        - after.get("vllm:generation_tokens_total", 0),
        "generated_tokens_while_open": after.get("vllm:generation_tokens_total", 0)
        - before.get("vllm:generation_tokens_total", 0),
    }

    unreachable = LLMClient(base_url="http://127.0.0.1:9/v1")
    started = time.perf_counter()
    try:
        "".join(unreachable.stream_chat(prompt(1), max_tokens=8))
    except LLMError as error:
        found["connect_error"] = (
            f"{error.kind} after {time.perf_counter() - started:.2f} s"
        )
    hurried = LLMClient(
        timeouts=LLMTimeouts(connect=3, first_token=0.0005, between_tokens=15, total=60)
    )
    try:
        "".join(hurried.stream_chat(prompt(40), max_tokens=8))
        found["first_token_deadline"] = "no error"  # noqa: S105 - a result, not a secret
    except LLMError as error:
        found["first_token_deadline"] = error.kind
    return found


def one_stream(
    args: argparse.Namespace, root: str, repeats: int, kind: str
) -> dict[str, float]:
    """Rounds of one answer at a time: vLLM's own time to first token for
    the very request (its engine's histogram, and its benchmark client's),
    a bare HTTP client's and the project's client's."""
    single: dict[str, list[float]] = {
        "answer": [],
        "client": [],
        "client_vllm": [],
        "raw": [],
        "raw_vllm": [],
        "bench": [],
        "bench_vllm": [],
        "decode": [],
    }
    next_prompt = prompts(repeats, kind)
    bench = VllmBenchClient(args.base_url, args.model)
    bench.ttft(next_prompt(), 4)  # its session's connection, as that tool warms up
    for _ in range(args.rounds):
        messages = next_prompt()
        before = metrics(root)
        single["bench"].append(bench.ttft(messages, 128))
        single["bench_vllm"].append(server_side(before, metrics(root))["ttft_s"])
        messages = next_prompt()
        before = metrics(root)
        raw = raw_stream(args.base_url, args.model, messages, 128)
        own = server_side(before, metrics(root))
        single["raw"].append(raw["ttft_s"])
        single["raw_vllm"].append(own["ttft_s"])
        single["decode"].append(own["decode_tokens_per_s"])
        messages = next_prompt()
        before = metrics(root)
        answer = client_stream(messages, 128)
        single["client"].append(answer["ttft_s"])
        single["answer"].append(answer["total_s"])
        single["client_vllm"].append(server_side(before, metrics(root))["ttft_s"])
    bench.close()
    ratios = [
        c / v for c, v in zip(single["client"], single["client_vllm"], strict=True)
    ]
    return {
        "vllm_bench_ttft_p50_s": statistics.median(single["bench"]),
        "client_over_vllm_bench": statistics.median(single["client"])
        / statistics.median(single["bench"]),
        "vllm_bench_over_vllm": statistics.median(
            b / v for b, v in zip(single["bench"], single["bench_vllm"], strict=True)
        ),
        "vllm_ttft_p50_s": statistics.median(
            single["raw_vllm"] + single["client_vllm"] + single["bench_vllm"]
        ),
        "raw_http_ttft_p50_s": statistics.median(single["raw"]),
        "client_ttft_p50_s": statistics.median(single["client"]),
        "client_over_vllm": statistics.median(ratios),
        "raw_http_over_vllm": statistics.median(
            r / v for r, v in zip(single["raw"], single["raw_vllm"], strict=True)
        ),
        "client_over_raw_http": statistics.median(single["client"])
        / statistics.median(single["raw"]),
        "vllm_decode_tokens_per_s": statistics.median(single["decode"]),
        "answer_s": statistics.median(single["answer"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-url", default="http://127.0.0.1:8000/v1")
    parser.add_argument("--model", default="archivist-llm")
    parser.add_argument("--max-model-len", type=int, default=8192)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--streams", default="1,4,16")
    parser.add_argument(
        "--prompts",
        default="distinct,same,answer",
        help="distinct (a new passage each time), same (what the prefix cache "
        "hides), answer (the product's answer prompt with its worked examples)",
    )
    parser.add_argument(
        "--answer-context-tokens",
        type=int,
        default=450,
        help="passage tokens in the product's prompt (ANSWER_CONTEXT_TOKENS)",
    )
    parser.add_argument(
        "--asker-processes",
        type=int,
        default=1,
        help="spread each level's askers over this many processes (a "
        "deployment's web processes); 1: threads of one process",
    )
    parser.add_argument(
        "--patterns",
        default="sustained,burst",
        help="sustained (each asker asks again when its answer ends), burst "
        "(all start in the same instant)",
    )
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    configure(args.base_url, args.model)
    root = args.base_url.removesuffix("/v1")
    args.out.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {
        "models": httpx.get(f"{args.base_url}/models", timeout=10).json()
    }

    repeats = 40  # about 1,400 prompt tokens, as an answer's context
    raw_stream(args.base_url, args.model, prompt(repeats), 16)  # warm-up
    sample = raw_stream(args.base_url, args.model, prompt(repeats), 32)
    (args.out / "stream.txt").write_text("\n".join(sample["lines"]))
    counts = [int(n) for n in args.streams.split(",")]
    # Distinct prompts are what answers send; the same prompt again shows
    # what vLLM's prefix cache hides.
    names = {
        "distinct": "distinct_prompts",
        "same": "same_prompt",
        "answer": "answer_prompt",
    }
    for kind in args.prompts.split(","):
        name = names[kind]
        # The product's prompt carries ANSWER_CONTEXT_TOKENS of passages.
        count = repeats
        if kind == "answer":
            from inference.llm import LLMClient

            count = max(
                1, args.answer_context_tokens // LLMClient().count_tokens(FILLER)
            )
        single = one_stream(args, root, count, kind)
        results[name] = {"one_stream": single, "passage_sentences": count}
        run_askers(root, "burst", counts[-1], count, kind, 4)  # warm-up
        for pattern in args.patterns.split(","):
            levels = [
                run_askers(
                    root,
                    pattern,
                    n,
                    count,
                    kind,
                    128,
                    single["answer_s"],
                    min(n, args.asker_processes),
                )
                for n in counts
            ]
            results[name][pattern] = {
                "levels": levels,
                f"p95_ttft_{counts[-1]}_over_{counts[0]}": levels[-1]["ttft_p95_s"]
                / levels[0]["ttft_p95_s"],
            }
    results["checks"] = checks(
        args.base_url, args.model, root, args.out, args.max_model_len
    )
    (args.out / "results.json").write_text(json.dumps(results, indent=2, default=str))
    print(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
