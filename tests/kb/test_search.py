"""Search: permission filter inside the SQL, full pages for tiny permitted
sets, Chinese and mixed queries, the API."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import nullcontext
from typing import Any, TypeVar

import numpy as np
import psycopg
import pytest
from django.db import connection
from django.test import Client

from accounts.services import token_create
from ingest.pipeline import chunk_rows_insert
from kb import search as search_module
from kb.embedding import embedder_for
from kb.index import active_model_name
from kb.models import Collection, Document, Role
from kb.search import (
    SearchFilters,
    SearchResult,
    execute,
    search_chunks,
    service,
    tuning,
)
from kb.search import statement as search_statement
from kb.services import collection_create, grant_revoke, grant_set
from kb.text import segment
from tests.conftest import World, embedding_storage, make_user
from tests.ingest.conftest import upload_bytes, wait_final


def _insert_synthetic_chunks(
    collection: Collection, count: int, seed: int, texts: list[str] | None = None
) -> Document:
    """Rows with random unit vectors: the search SQL's behaviour at volume,
    without running the embedding model thousands of times. ``texts``: the
    chunks' texts (else numbered passages about budgets)."""
    document = Document.objects.create(
        collection=collection,
        title=f"synthetic-{seed}",
        original_filename="s.txt",
        sha256=f"{seed:064d}",
        status=Document.Status.READY,
        chunk_count=count,
    )
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(count, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    texts = texts or [f"synthetic passage {i} about budgets" for i in range(count)]
    rows = [
        (
            document.pk, collection.pk, i, text, None, "",
            "NarrativeText", "[" + ",".join(f"{v:.5f}" for v in vector) + "]",
            "", segment(text),
        )
        for i, (text, vector) in enumerate(zip(texts, vectors, strict=True))
    ]  # fmt: skip
    with connection.cursor() as cursor:
        chunk_rows_insert(cursor, rows, model_name=active_model_name())
    return document


def test_chunk_vectors_stay_in_their_rows(world: World) -> None:
    """A chunk too big for its row has its text moved to the TOAST table,
    never its embedding or its full-text vector: the exact scan reads every
    vector of a small permitted set, the lexical half every candidate's
    full-text vector, and one fetched from the TOAST table costs several
    times more. The text is read only for the page of hits."""
    collection = collection_create(name="Long", creator=world.alice)
    document = _insert_synthetic_chunks(collection, 3, seed=4)
    rng = np.random.default_rng(5)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    # Random letters, which do not compress, in words of 64 (a full-text
    # vector smaller than the vector's 772 bytes): over 2 KB in all, with the
    # vector the largest part, the first that default storage moves out.
    texts = [
        " ".join("".join(rng.choice(letters, 64)) for _ in range(10)) for _ in range(3)
    ]
    with connection.cursor() as cursor:
        for ordinal, text in enumerate(texts):
            cursor.execute(
                "UPDATE kb_chunk SET text = %s, search_vector = to_tsvector('simple', %s)"
                " WHERE document_id = %s AND ordinal = %s",
                [text, text, document.pk, ordinal],
            )
        assert embedding_storage() == "p"
        cursor.execute(
            "SELECT pg_column_toast_chunk_id(text) IS NOT NULL,"
            " pg_column_toast_chunk_id(search_vector) IS NULL,"
            " pg_column_toast_chunk_id(embedding) IS NULL"
            " FROM kb_chunk WHERE document_id = %s",
            [document.pk],
        )
        assert cursor.fetchall() == [(True, True, True)] * 3


@pytest.mark.parametrize("path", ["exact", "hnsw"])
def test_tiny_permitted_set_still_gets_a_full_page(
    world: World, monkeypatch, path: str
) -> None:
    """12 readable chunks among 3,000 unreadable ones: 10 results, all readable,
    through both the exact path and the HNSW iterative-scan path."""
    big = collection_create(name="Big", creator=world.alice)
    small = collection_create(name="Small", creator=world.alice)
    grant_set(collection=small, user=world.charlie, role=Role.VIEWER, actor=world.alice)
    _insert_synthetic_chunks(big, 3000, seed=1)
    _insert_synthetic_chunks(small, 12, seed=2)
    monkeypatch.setattr(
        tuning, "EXACT_SCAN_MAX_CHUNKS", 10_000 if path == "exact" else 0
    )
    query_vector = np.random.default_rng(3).normal(size=384).astype(np.float32)
    result = search_chunks(
        user=world.charlie,
        query="quarterly figures",
        query_vector=query_vector,
        mode="dense",
    )
    assert result.path == path
    assert len(result.hits) == 10
    assert {hit.collection_id for hit in result.hits} == {small.pk}


@pytest.mark.parametrize("path", ["exact", "hnsw"])
def test_search_leaves_no_settings_behind_in_the_callers_transaction(
    world: World, monkeypatch, path: str
) -> None:
    """The tests run inside a transaction, like a caller's atomic block: the
    planner settings of the search must not outlive it there."""
    _insert_synthetic_chunks(world.collection_a, 30, seed=9)
    monkeypatch.setattr(
        tuning, "EXACT_SCAN_MAX_CHUNKS", 10_000 if path == "exact" else 0
    )
    with connection.cursor() as cursor:
        cursor.execute("SHOW enable_seqscan")
        before = cursor.fetchone()
        result = search_chunks(
            user=world.alice,
            query="budgets",
            query_vector=np.ones(384, dtype=np.float32),
            mode="dense",
        )
        assert result.path == path and result.hits
        values = []
        for name in ("enable_seqscan", "plan_cache_mode", "hnsw.ef_search"):
            cursor.execute(f"SHOW {name}")
            values.append(cursor.fetchone()[0])
    assert before == ("on",)
    assert values == ["on", "auto", "40"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("path", ["exact", "hnsw"])
def test_search_outside_a_transaction_is_one_and_leaves_no_settings(
    monkeypatch, path: str
) -> None:
    """In autocommit, as in a web request, the settings and the statement
    form a transaction of their own that ends with the round trip: the
    search's settings applied to it (12 readable chunks among 3,000 fill a
    page only with the iterative HNSW scan) and are gone after it."""
    owner, reader = make_user("settings-owner"), make_user("settings-reader")
    big = collection_create(name="Big", creator=owner)
    small = collection_create(name="Small", creator=owner)
    grant_set(collection=small, user=reader, role=Role.VIEWER, actor=owner)
    _insert_synthetic_chunks(big, 3000, seed=1)
    _insert_synthetic_chunks(small, 12, seed=2)
    monkeypatch.setattr(
        tuning, "EXACT_SCAN_MAX_CHUNKS", 10_000 if path == "exact" else 0
    )
    assert connection.get_autocommit()
    with connection.cursor() as cursor:
        # At 3,000 chunks the planner would rather sort them all than use
        # the HNSW index, which the test needs it to use.
        cursor.execute("SET enable_seqscan = off")
    try:
        result = search_chunks(
            user=reader,
            query="budgets",
            query_vector=np.random.default_rng(3).normal(size=384).astype(np.float32),
            mode="dense",
        )
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET enable_seqscan")
    assert result.path == path and len(result.hits) == 10
    assert {hit.collection_id for hit in result.hits} == {small.pk}
    with connection.cursor() as cursor:
        values = []
        for name in ("plan_cache_mode", "hnsw.ef_search", "hnsw.iterative_scan"):
            cursor.execute(f"SHOW {name}")
            values.append(cursor.fetchone()[0])
    assert values == ["auto", "40", "off"]


def test_a_failed_search_leaves_the_callers_transaction_usable(
    world: World, monkeypatch
) -> None:
    """The tests run inside a transaction, like a caller's atomic block: a
    search that fails there (here, a setting the server refuses) must not
    leave it aborted for whatever the caller does next."""
    _insert_synthetic_chunks(world.collection_a, 5, seed=12)
    monkeypatch.setattr(
        tuning, "search_settings", lambda candidates: {"hnsw.ef_search": "0"}
    )
    with pytest.raises(psycopg.errors.InvalidParameterValue):
        search_chunks(
            user=world.alice,
            query="budgets",
            query_vector=np.ones(384, dtype=np.float32),
            mode="dense",
        )
    assert Collection.objects.filter(pk=world.collection_a.pk).exists()


def test_a_query_vector_of_another_model_is_made_again_by_the_index_model(
    world: World,
) -> None:
    """After a model switch the search statement finds the index holding
    another model than the query vector's: the query is embedded again by the
    index's model and asked once more, instead of comparing vectors of two
    models (or finding nothing)."""
    _insert_synthetic_chunks(world.collection_a, 12, seed=11)
    result = search_chunks(
        user=world.alice,
        query="synthetic passage",
        query_vector=np.ones(384, dtype=np.float32),
        query_model="retired/model-before-reembed",
        mode="dense",
    )
    assert result.path == "exact"
    assert result.embedding_model == active_model_name()
    assert len(result.hits) == 10


def test_search_never_crosses_permissions_even_for_exact_words(world: World) -> None:
    secret = collection_create(name="Secret", creator=world.alice)
    _insert_synthetic_chunks(secret, 5, seed=4)
    for user in (world.bob, world.charlie, world.admin):
        hits = search_chunks(
            user=user, query="synthetic passage budgets", mode="lexical"
        ).hits
        assert all(hit.collection_id != secret.pk for hit in hits), user
    assert search_chunks(
        user=world.alice, query="synthetic passage budgets", mode="lexical"
    ).hits


def test_revoked_grant_hides_results_on_the_next_query(world: World) -> None:
    _insert_synthetic_chunks(world.collection_a, 5, seed=5)
    assert search_chunks(user=world.bob, query="budgets", mode="lexical").hits
    grant_revoke(grant=world.bob_grant, actor=world.alice)
    assert search_chunks(user=world.bob, query="budgets", mode="lexical").hits == []


def test_narrowing_a_token_applies_to_its_next_search(world: World) -> None:
    """The permission statement is compiled once per user and token state:
    a token limited after its first search must not keep its old reach."""
    _insert_synthetic_chunks(world.collection_a, 3, seed=7)
    token = token_create(user=world.alice, name="wide").token
    assert search_chunks(
        user=world.alice, query="budgets", mode="lexical", token=token
    ).hits
    token.collection_scoped = True
    token.save(update_fields=["collection_scoped"])
    token.collections.set([world.collection_b])
    hits = search_chunks(
        user=world.alice, query="budgets", mode="lexical", token=token
    ).hits
    assert all(hit.collection_id == world.collection_b.pk for hit in hits)
    token.collections.set([])
    assert (
        search_chunks(
            user=world.alice, query="budgets", mode="lexical", token=token
        ).hits
        == []
    )


def test_scoped_token_searches_only_its_collections(world: World) -> None:
    _insert_synthetic_chunks(world.collection_a, 3, seed=6)
    client = Client(HTTP_AUTHORIZATION=f"Bearer {world.token_b_plaintext}")
    response = client.get("/api/v1/search/", {"q": "synthetic budgets"})
    assert response.status_code == 200
    assert response.json()["results"] == []
    owner = Client()
    owner.force_login(world.alice)
    results = owner.get("/api/v1/search/", {"q": "synthetic budgets"}).json()["results"]
    assert results and "<mark>" in results[0]["snippet_html"]


@pytest.mark.parametrize("bad_id", ["415529139665719001088", "abc", "-3"])
def test_a_collection_filter_that_names_no_collection_matches_nothing(
    world: World, bad_id: str
) -> None:
    """An id that cannot exist narrows the search to nothing: it is neither
    an error of the server nor dropped (which would widen the search)."""
    _insert_synthetic_chunks(world.collection_a, 3, seed=8)
    client = Client()
    client.force_login(world.alice)
    everything = client.get("/api/v1/search/", {"q": "synthetic budgets"})
    assert everything.json()["results"]
    response = client.get(
        "/api/v1/search/", {"q": "synthetic budgets", "collection": bad_id}
    )
    assert response.status_code == 200
    assert response.json()["results"] == []


def test_a_type_filter_with_a_nul_character_is_a_clear_error(world: World) -> None:
    """Found by the schema fuzzer: PostgreSQL text cannot hold NUL, so such a
    filter is refused with a 400 saying why, in the API and the portal."""
    client = Client()
    client.force_login(world.alice)
    params = {"q": "budgets", "type": ["text/plain", "text/\x00plain"]}
    response = client.get("/api/v1/search/", params)
    assert response.status_code == 400
    assert "NUL" in response.json()["message"]
    page = client.get("/search/", params)
    assert page.status_code == 400
    assert b"NUL" in page.content


def test_search_page_shows_highlighted_passages(world: World) -> None:
    _insert_synthetic_chunks(world.collection_a, 3, seed=7)
    client = Client()
    client.force_login(world.bob)
    page = client.get("/search/", {"q": "budgets"}).content.decode()
    assert "<mark>budgets</mark>" in page
    assert "/documents/" in page


def test_document_text_is_escaped_in_results(world: World) -> None:
    document = _insert_synthetic_chunks(world.collection_a, 1, seed=8)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE kb_chunk SET text = %s WHERE document_id = %s",
            ["<script>alert(1)</script> budgets", document.pk],
        )
    client = Client()
    client.force_login(world.bob)
    page = client.get("/search/", {"q": "budgets"}).content.decode()
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;" in page


CHINESE = (
    "员工手册\n\n公司为每位员工提供带薪年假十五天。请假需要提前两周向部门经理申请。\n\n"
    "报销制度\n\n出差费用报销必须在三十天内提交发票和行程单。VPN 账号由信息技术部统一发放。"
)


def test_chinese_document_found_by_chinese_and_mixed_queries(
    ingest_world: World,
) -> None:
    world = ingest_world
    outcome = upload_bytes(
        world, world.collection_a, "handbook-zh.txt", CHINESE.encode("utf-8")
    )
    document = wait_final([outcome.document.pk], timeout=180)[outcome.document.pk]
    assert document.status == "ready", document.failure_reason
    chinese = search_chunks(user=world.bob, query="带薪年假有几天")
    assert chinese.hits and chinese.hits[0].document_id == document.pk
    assert "年假" in chinese.hits[0].text
    assert not chinese.dense_used  # the English model does not read Chinese
    mixed = search_chunks(user=world.bob, query="VPN 账号 怎么 申请")
    assert mixed.hits and "VPN" in mixed.hits[0].text


def test_reranker_only_reorders_permitted_candidates(world: World, settings) -> None:
    """A configured cross-encoder reorders the fused candidates; it can never
    bring in a passage the SQL did not return. (No trained cross-encoder is
    available offline here, so the bundled MiniLM weights with an untrained
    scoring head stand in: the plumbing is real, the ranking quality is not
    what this test measures.)"""
    from kb.embedding import _bundled_model_path
    from kb.rerank import _load

    readable = collection_create(name="Readable", creator=world.alice)
    hidden = collection_create(name="Hidden", creator=world.alice)
    grant_set(
        collection=readable, user=world.charlie, role=Role.VIEWER, actor=world.alice
    )
    _insert_synthetic_chunks(readable, 40, seed=11)
    _insert_synthetic_chunks(hidden, 40, seed=12)
    plain = search_chunks(
        user=world.charlie, query="synthetic passage budgets", limit=30
    )
    settings.RERANKER_MODEL = _bundled_model_path()
    try:
        reranked = search_chunks(
            user=world.charlie, query="synthetic passage budgets", limit=5
        )
    finally:
        _load.cache_clear()
    assert len(reranked.hits) == 5
    assert "rerank_ms" in reranked.timings_ms
    assert {hit.chunk_id for hit in reranked.hits} <= {
        hit.chunk_id for hit in plain.hits
    }
    assert {hit.collection_id for hit in reranked.hits} == {readable.pk}


def test_hybrid_fused_here_ranks_as_the_one_statement(world: World) -> None:
    """A query still to embed has its halves run apart (the lexical half
    while the model embeds it) and fused in Python; the ranking, scores and
    ranks are those of the one statement given the same vector."""
    _insert_synthetic_chunks(world.collection_a, 150, seed=8)
    query = "synthetic passage about budgets 17"
    model = active_model_name()
    vector = embedder_for(model).encode_query(query)

    apart = search_chunks(user=world.alice, query=query, limit=30)
    together = search_chunks(
        user=world.alice, query=query, limit=30, query_vector=vector, query_model=model
    )

    def ranking(result: search_module.SearchResult) -> list[tuple[object, ...]]:
        return [
            (hit.chunk_id, round(hit.score, 12), hit.dense_rank, hit.lexical_rank)
            for hit in result.hits
        ]

    assert apart.dense_used and "embed_ms" in apart.timings_ms
    assert len(apart.hits) == 30
    # Fused: passages from both lists, some in both.
    assert any(hit.dense_rank and hit.lexical_rank for hit in apart.hits)
    assert ranking(apart) == ranking(together)


def test_a_given_lexical_list_is_checked_against_permissions_again(
    world: World,
) -> None:
    """The second statement of a hybrid search takes the first one's lexical
    list; a chunk whose collection is not (or no longer) readable is dropped
    there, whatever the list says."""
    document = _insert_synthetic_chunks(world.collection_a, 5, seed=9)
    listed = list(document.chunks.values_list("pk", flat=True))
    values = {
        "dense_on": True,
        "lexical_on": False,
        **tuning.tuning_values(),
        "text": "",
        "dense_weight": 0.0,
        "limit": 10,
        "lexical_ids": listed,
        "lexical_ranks": list(range(1, len(listed) + 1)),
        "lexical_coverage": [1.0] * len(listed),
    }
    vector = np.ones(384, dtype=np.float32) / np.sqrt(384)
    for user, expected in ((world.charlie, set()), (world.alice, set(listed))):
        statement = execute.SearchStatement.build(
            user=user,
            token=None,
            filters=search_module.SearchFilters(),
            dense_on=True,
            candidates=100,
            part="given_lexical",
        )
        _scope, rows = statement.run(
            {**values, **statement.params}, active_model_name(), vector
        )
        assert {row[0] for row in rows} == expected


T = TypeVar("T")


class _CountingExecutor:
    """Runs what it is given on the real query-embedding thread and counts it."""

    def __init__(self, executor: ThreadPoolExecutor) -> None:
        self.executor = executor
        self.submitted = 0

    def submit(self, work: Callable[..., T], /, *args: Any) -> Future[T]:
        self.submitted += 1
        return self.executor.submit(work, *args)


def test_only_a_search_alone_in_its_process_embeds_while_lexical_runs(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Overlapping the query's embedding with the lexical half costs a second
    statement; a search started while another runs in the process sends the
    one statement instead, and both give the same ranking."""
    _insert_synthetic_chunks(world.collection_a, 60, seed=10)
    query = "synthetic passage about budgets 23"
    counting = _CountingExecutor(service._QUERY_EMBEDDING)
    monkeypatch.setattr(service, "_QUERY_EMBEDDING", counting)

    alone = search_chunks(user=world.alice, query=query, limit=20)
    assert counting.submitted == 1

    with service._searches_running.one() as first_is_alone:
        assert first_is_alone
        busy = search_chunks(user=world.alice, query=query, limit=20)
    assert counting.submitted == 1

    assert alone.dense_used and busy.dense_used
    assert [(hit.chunk_id, round(hit.score, 12)) for hit in alone.hits] == [
        (hit.chunk_id, round(hit.score, 12)) for hit in busy.hits
    ]
    assert len(alone.hits) == 20


@pytest.mark.parametrize("running", ["alone", "beside_another"])
def test_hybrid_search_keeps_permissions_in_both_of_its_forms(
    world: World, running: str
) -> None:
    """Alone in its process a hybrid search sends two statements, beside
    another search one: neither shows an unreadable collection, and a
    revoked grant hides its collection from the next search."""
    secret = collection_create(name="Secret", creator=world.alice)
    _insert_synthetic_chunks(secret, 5, seed=11)
    _insert_synthetic_chunks(world.collection_a, 5, seed=12)
    query = "synthetic passage budgets"
    with (
        service._searches_running.one()
        if running == "beside_another"
        else nullcontext()
    ):
        for user in (world.bob, world.charlie, world.admin):
            hits = search_chunks(user=user, query=query).hits
            assert all(hit.collection_id != secret.pk for hit in hits), user
        assert search_chunks(user=world.alice, query=query).hits
        assert search_chunks(user=world.bob, query=query).hits
        grant_revoke(grant=world.bob_grant, actor=world.alice)
        assert search_chunks(user=world.bob, query=query).hits == []


def test_search_statement_placeholders_become_postgresql_ones() -> None:
    """One number per name however often it recurs, a doubled % made single
    (as in ORM SQL), and a placeholder without a name refused rather than
    sent with the wrong value."""
    statement = search_statement.ServerSQL.from_named(
        "SELECT %(a)s, %(b)s, %(a)s WHERE name LIKE 'x%%'"
    )
    assert statement.text == "SELECT $1, $2, $1 WHERE name LIKE 'x%'"
    assert statement.values({"b": 2, "a": 1, "unused": 3}) == [1, 2]
    with pytest.raises(ValueError):
        search_statement.ServerSQL.from_named("SELECT %(a)s, %s")


def test_lexical_candidates_keep_permissions_on_both_paths(world: World) -> None:
    """The lexical half finds its candidates through the full-text index,
    or, when the permitted collections hold fewer chunks than the index
    would hand over for the query's words, by reading those collections'
    chunks: bob (A only) takes the second way here, alice (A and B) the
    first. Neither ever returns a chunk from a collection its user may not
    read."""
    _insert_synthetic_chunks(
        world.collection_a, 3, seed=31, texts=["apple orchard"] * 3
    )
    _insert_synthetic_chunks(world.collection_b, 40, seed=32, texts=["apple pie"] * 40)

    bob_hits = search_chunks(user=world.bob, query="apple", mode="lexical").hits
    assert len(bob_hits) == 3
    assert {hit.collection_id for hit in bob_hits} == {world.collection_a.pk}

    alice_hits = search_chunks(user=world.alice, query="apple", mode="lexical").hits
    assert len(alice_hits) == 10
    assert {hit.collection_id for hit in alice_hits} <= {
        world.collection_a.pk,
        world.collection_b.pk,
    }
    assert search_chunks(user=world.charlie, query="apple", mode="lexical").hits == []


def test_lexical_candidates_come_from_the_rarest_words(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Candidates are the chunks holding the query's rarest words, up to a
    budget of chunks: a passage with a rare word is found among many with a
    common one, and a query of common words alone still fills its page."""
    monkeypatch.setattr(tuning, "LEXICAL_SEED_CHUNKS", 5)
    texts = ["budget report"] * 30 + ["budget zebra"]
    document = _insert_synthetic_chunks(
        world.collection_a, len(texts), seed=33, texts=texts
    )
    zebra = document.chunks.get(ordinal=30)

    hits = search_chunks(user=world.alice, query="budget zebra", mode="lexical").hits
    assert hits[0].chunk_id == zebra.pk
    assert (
        len(search_chunks(user=world.alice, query="budget", mode="lexical").hits) == 10
    )

    # At most LEXICAL_MAX_MATCHED candidates are ranked.
    monkeypatch.setattr(tuning, "LEXICAL_MAX_MATCHED", 7)
    assert (
        len(search_chunks(user=world.alice, query="budget", mode="lexical").hits) == 7
    )


@pytest.mark.parametrize("path", ["exact", "hnsw"])
def test_a_collection_filter_is_the_scope_of_the_search(
    world: World, monkeypatch, path: str
) -> None:
    """alice may read a large collection and a small one, bob only the small
    one. Filtered to the small one, alice's search takes the path its size
    calls for, returns a full page, and ranks exactly as bob's: what else she
    may read shapes neither the path nor the statistics."""
    _insert_synthetic_chunks(world.collection_a, 40, seed=21)
    _insert_synthetic_chunks(
        world.collection_b,
        400,
        seed=22,
        texts=[f"synthetic budgets budgets review {i}" for i in range(400)],
    )
    # Between the small collection's size and everything alice may read.
    monkeypatch.setattr(tuning, "EXACT_SCAN_MAX_CHUNKS", 100 if path == "exact" else 10)
    small = SearchFilters(collection_ids=(world.collection_a.pk,))
    query = "synthetic passage about budgets"
    hers = search_chunks(user=world.alice, query=query, limit=10, filters=small)
    his = search_chunks(user=world.bob, query=query, limit=10, filters=small)
    assert hers.path == his.path == path
    assert len(hers.hits) == 10
    assert {hit.collection_id for hit in hers.hits} == {world.collection_a.pk}

    def ranking(result: SearchResult) -> list[tuple[int, float]]:
        return [(hit.chunk_id, round(hit.score, 9)) for hit in result.hits]

    assert ranking(hers) == ranking(his)
    lexical = [
        search_chunks(user=user, query=query, mode="lexical", filters=small)
        for user in (world.alice, world.bob)
    ]
    assert [hit.lexical_coverage for hit in lexical[0].hits] == [
        hit.lexical_coverage for hit in lexical[1].hits
    ]


def test_a_document_filter_chooses_the_path_by_its_own_size(
    world: World, monkeypatch
) -> None:
    """One small document in a large collection: the exact scan of that
    document, a full page of its chunks."""
    _insert_synthetic_chunks(world.collection_a, 300, seed=23)
    document = _insert_synthetic_chunks(world.collection_a, 15, seed=24)
    monkeypatch.setattr(tuning, "EXACT_SCAN_MAX_CHUNKS", 100)
    result = search_chunks(
        user=world.bob,
        query="synthetic budgets",
        limit=10,
        filters=SearchFilters(document_ids=(document.pk,)),
    )
    assert result.path == "exact"
    assert len(result.hits) == 10
    assert {hit.document_id for hit in result.hits} == {document.pk}
