"""Search latency through the API against the same SQL run directly.

Starts the stack's database, Redis and web server (gunicorn, as `make run`
does), ingests SciFact abstracts into several collections through the real
pipeline, gives a user a token that reads only some of them, then in the same
run:

- the API: ``GET /api/v1/search/?q=...`` with the token, at 1 and 16
  concurrent clients (HTTP, authentication, the permission filter, query
  embedding, the search SQL, serialisation);
- direct SQL: the very statement the search service sends for each query
  (captured once, with its parameters), replayed on plain database
  connections at the same concurrency, prepared and pipelined as the service
  sends it. It is the one statement of a search that runs beside others; a
  search alone in its process sends two (its lexical half while the query is
  embedded, then the rest), which only the API side does.

Each side runs twice per concurrency, in the order API, direct, direct, API.
Prints p50/p95 of each, the ratio API/direct at p95, and the CPU time each
request cost the web server and the database (where the API's extra time goes).

Usage: .venv/bin/python bench/search_latency.py [--docs N (default: all 5,183)] [--queries 300]
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psutil

from bench.common import DATA, bench_stack, ingest_texts, percentile, read_jsonl

COLLECTIONS = 4


@dataclass(frozen=True)
class Statement:
    """One statement the search service sent, as it sent it."""

    sql: Any
    params: Any
    prepare: bool
    # The pipeline it went out in (None: on its own); held, so that the next
    # pipeline is never mistaken for this one.
    pipeline: Any


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


def cpu_seconds(processes: list[Any]) -> float:
    """CPU time (user + system) of these processes and of their children that
    have exited (PostgreSQL's parallel workers come and go)."""
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system + times.children_user + times.children_system
    return total


def database_server(data_dir: Path) -> list[Any]:
    """The postmaster serving ``data_dir`` (not another server on the
    machine) and its live children."""
    postmaster = next(
        p
        for p in psutil.process_iter(["name", "cmdline"])
        if p.info["name"] == "postgres"
        and p.parent().name() != "postgres"
        and str(data_dir) in (p.info["cmdline"] or [])
    )
    return [postmaster, *postmaster.children()]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--docs", type=int, default=0, help="0: the whole corpus")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()

    corpus = read_jsonl(DATA / "beir" / "scifact" / "corpus.jsonl")[: args.docs or None]
    queries = [
        q["text"] for q in read_jsonl(DATA / "beir" / "scifact" / "queries.jsonl")
    ][: args.queries]
    with bench_stack() as services:
        import httpx
        import psycopg
        from django.db import connection

        from accounts.models import User
        from accounts.services import token_create
        from config.launcher import free_port
        from kb import search as search_module
        from kb.models import Role
        from kb.search import execute as search_execute
        from kb.search import search_chunks
        from kb.search import service as search_service
        from kb.search import tuning as search_tuning
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
        # As a server that has been answering for a while: what was just
        # ingested is vacuumed and analysed. Otherwise autovacuum does it
        # during the first timed pass (the API's) and its CPU counts there.
        with connection.cursor() as cursor:
            cursor.execute("VACUUM (ANALYZE)")

        # A benchmark is not abuse: lift the per-token rate limit.
        services.env["API_RATE_LIMIT"] = "1000000/min"
        port = args.port or free_port()
        web = services.start_web(host="127.0.0.1", port=port)
        data_dir = services.var_dir / "postgres"
        web.wait_ready()
        web_processes = psutil.Process(web.process.pid).children(recursive=True)
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

        # The statements the service sends for each query, captured once
        # with their parameters, grouped as the service sends them (a group
        # of several is one pipelined round trip).
        statements: dict[str, list[list[Statement]]] = {}
        record_into: list[list[Statement]] = []

        class RecordingCursor(psycopg.RawCursor):
            def execute(self, query: Any, params: Any = None, **options: Any) -> Any:
                pipeline = self.connection._pipeline
                if (
                    not record_into
                    or pipeline is None
                    or record_into[-1][0].pipeline is not pipeline
                ):
                    record_into.append([])
                record_into[-1].append(
                    Statement(
                        query,
                        params,
                        bool(options.get("prepare")),
                        pipeline,
                    )
                )
                return super().execute(query, params, **options)

        statement_cursor = search_execute.statement_cursor

        def recording_cursor() -> Any:
            return RecordingCursor(statement_cursor().connection)

        search_execute.statement_cursor = recording_cursor
        # Captured as a search that is not alone in its process sends them:
        # the one statement. (A search alone embeds its query while its
        # lexical half runs, and so sends that half and then the rest as two
        # statements; the direct side replays the least SQL a search sends.)
        with search_service._searches_running.one():
            for query in queries:
                record_into = statements[query] = []
                search_chunks(user=reader, query=query)
        search_execute.statement_cursor = statement_cursor
        dsn = connection.get_connection_params()
        database = [
            psycopg.connect(
                dbname=dsn["dbname"], host=dsn.get("host"), user=dsn.get("user"),
                password=dsn.get("password"), port=dsn.get("port"),
                # As the service: only what it prepares is prepared, and
                # a pipelined group is its own transaction.
                prepare_threshold=search_tuning.PREPARE_ONLY_WHEN_ASKED,
                autocommit=True,
            )
            for _ in range(16)
        ]  # fmt: skip
        for conn in database:
            search_module.prepare_search_connection(conn)

        def api(query: str, index: int) -> None:
            response = clients[index].get("/api/v1/search/", params={"q": query})
            response.raise_for_status()

        def direct(query: str, index: int) -> None:
            conn = database[index]
            for group in statements[query]:
                cursors = [psycopg.RawCursor(conn) for _ in group]
                with conn.pipeline() if len(group) > 1 else nullcontext():
                    for cursor, statement in zip(cursors, group, strict=True):
                        cursor.execute(
                            statement.sql,
                            statement.params,
                            prepare=statement.prepare,
                        )
                for cursor in cursors:
                    if cursor.description:
                        cursor.fetchall()

        def measured(
            concurrency: int, call: Callable[[str, int], None]
        ) -> tuple[list[float], float, float]:
            """Latencies, and CPU ms per request of the web and the database."""
            # Backends that exit during the run count in the postmaster's
            # children; those that start count whole.
            web_before = cpu_seconds(web_processes)
            database_before = cpu_seconds(database_server(data_dir))
            latencies = run_clients(concurrency, queries, call)
            pg_cpu = cpu_seconds(database_server(data_dir)) - database_before
            return (
                latencies,
                (cpu_seconds(web_processes) - web_before) * 1000 / len(queries),
                pg_cpu * 1000 / len(queries),
            )

        for concurrency in (1, 16):
            # In the order API, direct, direct, API, so that a drift in the
            # machine's speed during the run weighs on both sides alike.
            api_ms, api_web_cpu, api_pg_cpu = measured(concurrency, api)
            direct_ms, _, direct_pg_cpu = measured(concurrency, direct)
            more_direct_ms, _, _ = measured(concurrency, direct)
            more_api_ms, _, _ = measured(concurrency, api)
            api_ms += more_api_ms
            direct_ms += more_direct_ms
            print(
                f"{concurrency:2d} client(s): api p50={percentile(api_ms, 0.5):.1f}ms "
                f"p95={percentile(api_ms, 0.95):.1f}ms | direct sql p50="
                f"{percentile(direct_ms, 0.5):.1f}ms p95={percentile(direct_ms, 0.95):.1f}ms | "
                f"api/direct p95 {percentile(api_ms, 0.95) / percentile(direct_ms, 0.95):.2f} "
                "(target <= 1.5)",
                flush=True,
            )
            print(
                f"   cpu per request: api web {api_web_cpu:.1f}ms + database "
                f"{api_pg_cpu:.1f}ms | direct database {direct_pg_cpu:.1f}ms",
                flush=True,
            )


if __name__ == "__main__":
    main()
