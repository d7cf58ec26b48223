"""Search latency through the API against the same SQL run directly.

Starts the stack's database, Redis and web server (gunicorn, as `make run`
does), ingests SciFact abstracts into several collections through the real
pipeline, gives a user a token that reads only some of them, then in the same
run:

- the API: ``GET /api/v1/search/?q=...`` with the token, at 1 and 16
  concurrent clients (HTTP, authentication, the permission filter, query
  embedding, the search SQL, serialisation);
- direct SQL: the very statements the search service sent for each query
  (captured once), replayed on plain database connections at the same
  concurrency.

Prints p50/p95 of each and the ratio API/direct at p95.

Usage: .venv/bin/python bench/search_latency.py [--docs 2000] [--queries 300]
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import DATA, bench_stack, ingest_texts, percentile, read_jsonl

COLLECTIONS = 4


def run_clients(
    clients: int, work: list[str], call: Callable[[str, int], None]
) -> list[float]:
    """Each client takes the next query until none are left; returns every
    request's latency in milliseconds."""
    latencies: list[float] = []
    lock = threading.Lock()
    queue = list(enumerate(work))

    def client(client_index: int) -> None:
        while True:
            with lock:
                if not queue:
                    return
                _index, query = queue.pop()
            started = time.perf_counter()
            call(query, client_index)
            elapsed = (time.perf_counter() - started) * 1000
            with lock:
                latencies.append(elapsed)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--docs", type=int, default=2000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()

    corpus = read_jsonl(DATA / "beir" / "scifact" / "corpus.jsonl")[: args.docs]
    queries = [
        q["text"] for q in read_jsonl(DATA / "beir" / "scifact" / "queries.jsonl")
    ][: args.queries]
    with bench_stack() as services:
        import httpx
        import psycopg
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        from accounts.models import User
        from accounts.services import token_create
        from config.launcher import free_port
        from kb.models import Role
        from kb.search import search_chunks
        from kb.services import collection_create, grant_set

        owner, _ = User.objects.get_or_create(username="latency-owner")
        reader, _ = User.objects.get_or_create(username="latency-reader")
        print(f"# ingesting {len(corpus)} abstracts into {COLLECTIONS} collections")
        for index in range(COLLECTIONS):
            collection = collection_create(name=f"latency-{index}", creator=owner)
            part = corpus[index::COLLECTIONS]
            ingest_texts(
                collection,
                owner,
                [(d["_id"], f"{d.get('title', '')}\n\n{d['text']}") for d in part],
            )
            if index % 2 == 0:  # the reader may read half of them
                grant_set(
                    collection=collection, user=reader, role=Role.VIEWER, actor=owner
                )
        secret = token_create(user=reader, name="latency bench").plaintext

        # A benchmark is not abuse: lift the per-token rate limit.
        services.env["API_RATE_LIMIT"] = "1000000/min"
        port = args.port or free_port()
        services.start_web(host="127.0.0.1", port=port).wait_ready()
        base = f"http://127.0.0.1:{port}"
        headers = {"Authorization": f"Bearer {secret}"}
        clients = [
            httpx.Client(base_url=base, headers=headers, timeout=60) for _ in range(16)
        ]

        # Every web worker loads its embedding model on its first query.
        def warm(query: str, index: int) -> None:
            clients[index].get(
                "/api/v1/search/", params={"q": query}
            ).raise_for_status()

        run_clients(16, queries[:32], warm)

        # The statements the service sends for each query, captured once.
        statements: dict[str, list[str]] = {}
        for query in queries:
            with CaptureQueriesContext(connection) as captured:
                search_chunks(user=reader, query=query)
            statements[query] = [
                entry["sql"]
                for entry in captured.captured_queries
                if not entry["sql"].startswith(("SAVEPOINT", "RELEASE"))
            ]
        dsn = connection.get_connection_params()
        database = [
            psycopg.connect(
                dbname=dsn["dbname"], host=dsn.get("host"), user=dsn.get("user"),
                password=dsn.get("password"), port=dsn.get("port"),
            )
            for _ in range(16)
        ]  # fmt: skip

        def api(query: str, index: int) -> None:
            response = clients[index].get("/api/v1/search/", params={"q": query})
            response.raise_for_status()

        def direct(query: str, index: int) -> None:
            conn = database[index]
            with conn.transaction(), conn.cursor() as cursor:
                for sql in statements[query]:
                    cursor.execute(sql.encode())
                    if cursor.description:
                        cursor.fetchall()

        for concurrency in (1, 16):
            api_ms = run_clients(concurrency, queries, api)
            direct_ms = run_clients(concurrency, queries, direct)
            print(
                f"{concurrency:2d} client(s): api p50={percentile(api_ms, 0.5):.1f}ms "
                f"p95={percentile(api_ms, 0.95):.1f}ms | direct sql p50="
                f"{percentile(direct_ms, 0.5):.1f}ms p95={percentile(direct_ms, 0.95):.1f}ms | "
                f"api/direct p95 {percentile(api_ms, 0.95) / percentile(direct_ms, 0.95):.2f} "
                "(target <= 1.5)",
                flush=True,
            )


if __name__ == "__main__":
    main()
