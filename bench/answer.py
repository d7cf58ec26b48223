"""Answer latency through the API, the LLM server's own speed beside it, the
answer cache, and the semantic cache's wrong-hit rate.

Starts the stack (database, Redis, LLM server, web server), ingests SciFact
abstracts through the real pipeline, then in the same run:

1. asks SciFact questions through ``POST /api/v1/ask/`` with streaming and
   reads the server-sent events: retrieval time (reported by the server),
   time to the first token and generation time as the client sees them;
2. sends the very same prompt (the passages the answer used) straight to the
   LLM server and times its first token: platform overhead = (1) - (2);
3. asks every question again: cache-hit latency next to the uncached path;
4. runs ``bench/data/paraphrases.jsonl`` (true paraphrases mixed with
   near-miss questions) through the semantic tier and counts wrong hits,
   next to a plain cosine-threshold cache (GPTCache's approach) on the same
   embeddings.

Usage: .venv/bin/python bench/answer.py [--docs 500] [--questions 20]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import DATA, bench_stack, ingest_texts, percentile, read_jsonl

PARAPHRASES = Path(__file__).resolve().parent / "data" / "paraphrases.jsonl"


def summary(name: str, values: list[float]) -> str:
    return (
        f"{name}: p50={percentile(values, 0.5):.0f}ms p95={percentile(values, 0.95):.0f}ms "
        f"mean={statistics.mean(values):.0f}ms"
    )


def stream_ask(client: Any, question: str) -> dict[str, Any]:
    """One streamed ask; client-side timings and the server's events."""
    started = time.perf_counter()
    first_token = None
    events: dict[str, Any] = {}
    with client.stream(
        "POST", "/api/v1/ask/", json={"question": question, "stream": True}
    ) as response:
        response.raise_for_status()
        name = ""
        for line in response.iter_lines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                if name == "token" and first_token is None:
                    first_token = time.perf_counter()
                events.setdefault(name, json.loads(line[6:]))
    ended = time.perf_counter()
    return {
        "events": events,
        "first_token_ms": ((first_token or ended) - started) * 1000,
        "total_ms": (ended - started) * 1000,
        "generation_ms": (ended - (first_token or ended)) * 1000,
    }


def direct_first_token_ms(
    base_url: str, model: str, messages: list[dict[str, str]]
) -> float:
    import httpx

    started = time.perf_counter()
    with (
        httpx.Client(timeout=120) as client,
        client.stream(
            "POST",
            f"{base_url}/chat/completions",
            # A nonce first and cache_prompt false: otherwise the server answers
            # from the KV cache it kept for the very same prompt a moment ago
            # (llama-cpp-python reuses any common prefix; vLLM ignores the flag).
            json={
                "model": model,
                "messages": [
                    {"role": "system", "content": f"[{time.time_ns()}]"},
                    *messages,
                ],
                "max_tokens": 1,
                "stream": True,
                "cache_prompt": False,
            },
        ) as response,
    ):
        for line in response.iter_lines():
            if line.startswith("data:") and '"content"' in line:
                return (time.perf_counter() - started) * 1000
    return (time.perf_counter() - started) * 1000


def semantic_wrong_hits() -> None:
    import numpy as np
    from django.conf import settings

    from inference.cache import AnswerCache, CachedAnswer, scope_key, signature
    from kb.embedding import embedder_for
    from kb.search import dense_weight

    pairs = read_jsonl(PARAPHRASES)
    embedder = embedder_for()
    cache = AnswerCache()
    ours = {"right": 0, "wrong": 0, "missed": 0}
    cosine_only = {"right": 0, "wrong": 0, "missed": 0}
    for index, pair in enumerate(pairs):
        scope = scope_key([(10_000 + index, 1)], embedding_model=embedder.model_name)
        base, variant = pair["base"], pair["variant"]
        # As in ask(): no semantic tier for a language the model cannot read.
        readable = dense_weight(base, embedder.model_name) > 0
        base_vector = embedder.encode_query(base)
        variant_vector = embedder.encode_query(variant)
        cache.put(
            scope,
            base,
            base_vector if readable else None,
            CachedAnswer("answer", [], [], base),
        )
        hit = cache.get(
            scope,
            variant,
            variant_vector if dense_weight(variant, embedder.model_name) > 0 else None,
        )
        cosine = float(np.dot(base_vector, variant_vector))
        plain_hit = cosine >= settings.ANSWER_CACHE_SIMILARITY
        for tally, was_hit in ((ours, hit is not None), (cosine_only, plain_hit)):
            if was_hit and pair["same"]:
                tally["right"] += 1
            elif was_hit:
                tally["wrong"] += 1
            elif pair["same"]:
                tally["missed"] += 1
        if hit is not None and not pair["same"]:
            print(f"  wrong hit: {base!r} -> {variant!r}")
        if signature(base).matches(signature(variant)) != pair["same"] and pair["same"]:
            print(f"  paraphrase refused by the signature: {base!r} -> {variant!r}")
    cache.purge()
    near_misses = sum(1 for pair in pairs if not pair["same"])
    paraphrases = len(pairs) - near_misses
    for name, tally in (
        ("archivist semantic tier", ours),
        ("cosine threshold only", cosine_only),
    ):
        hits = tally["right"] + tally["wrong"]
        print(
            f"{name}: wrong hits {tally['wrong']}/{near_misses} near-misses "
            f"({100 * tally['wrong'] / max(1, hits):.1f}% of its hits), "
            f"paraphrases served {tally['right']}/{paraphrases}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--docs", type=int, default=500)
    parser.add_argument("--questions", type=int, default=20)
    args = parser.parse_args()

    corpus = read_jsonl(DATA / "beir" / "scifact" / "corpus.jsonl")[: args.docs]
    titles = [d["title"] for d in corpus]
    with bench_stack() as services:
        import httpx

        from accounts.models import User
        from accounts.services import token_create
        from config.launcher import free_port
        from inference import prompts
        from inference.budget import replayed_prompt
        from kb.services import collection_create

        llm_url = services.start_llm()
        llm_model = services.env["LLM_MODEL"]
        user, _ = User.objects.get_or_create(username="answer-bench")
        collection = collection_create(name="answer-bench", creator=user)
        print(f"# ingesting {len(corpus)} SciFact abstracts", flush=True)
        ingest_texts(
            collection,
            user,
            [(d["_id"], f"{d['title']}\n\n{d['text']}") for d in corpus],
        )
        secret = token_create(user=user, name="answer bench").plaintext
        # A benchmark is not abuse: lift the per-token rate limits.
        services.env["API_RATE_LIMIT"] = "1000000/min"
        services.env["ASK_RATE_LIMIT"] = "1000000/min"
        port = free_port()
        services.start_web(host="127.0.0.1", port=port).wait_ready()
        client = httpx.Client(
            base_url=f"http://127.0.0.1:{port}",
            headers={"Authorization": f"Bearer {secret}"},
            timeout=300,
        )
        # Questions about documents that are in the collection.
        questions = [
            f"What is known about {title.rstrip('.')}?"
            for title in titles[: args.questions]
        ]
        stream_ask(client, "warm-up: what is this collection about?")

        retrieval, first_token, generation, total, direct, overhead = (
            [],
            [],
            [],
            [],
            [],
            [],
        )
        for question in questions:
            result = stream_ask(client, question)
            done = result["events"].get("done") or {}
            meta = result["events"].get("meta") or {}
            timings = done.get("timings_ms", {})
            retrieval.append(float(timings.get("retrieval_ms", 0.0)))
            first_token.append(result["first_token_ms"])
            generation.append(result["generation_ms"])
            total.append(result["total_ms"])
            if meta.get("passages"):
                messages = replayed_prompt(
                    meta["standalone_question"],
                    meta["passages"],
                    prompts.question_language(question),
                )
                measured = direct_first_token_ms(llm_url, llm_model, messages)
                direct.append(measured)
                overhead.append(result["first_token_ms"] - measured)
        print(f"{len(questions)} questions, streamed through the API (uncached):")
        print("  " + summary("retrieval (server)", retrieval))
        print("  " + summary("time to first token (client)", first_token))
        print("  " + summary("generation after the first token", generation))
        print("  " + summary("end to end", total))
        if direct:
            print(
                "  "
                + summary("LLM server's own time to first token, same prompt", direct)
            )
            print("  " + summary("platform overhead before the first token", overhead))

        cached = []
        tiers = []
        for question in questions:
            started = time.perf_counter()
            body = client.post("/api/v1/ask/", json={"question": question}).json()
            cached.append((time.perf_counter() - started) * 1000)
            tiers.append(body.get("from_cache") or "miss")
        print("repeated questions (answer cache):")
        print("  " + summary("cache hit end to end", cached))
        print(
            f"  tiers: {', '.join(f'{t}={tiers.count(t)}' for t in sorted(set(tiers)))}"
        )
        print(
            f"  speed-up at p50: {percentile(total, 0.5) / max(0.1, percentile(cached, 0.5)):.0f}x"
        )
        print("semantic tier on bench/data/paraphrases.jsonl:")
        semantic_wrong_hits()


if __name__ == "__main__":
    main()
