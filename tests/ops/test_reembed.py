"""Changing the embedding model while queries run: no query fails, every
query's dense results come from one model (the one that embedded it), new
uploads use the new model, and the change can be undone the same way."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.db import connection

from kb.embedding import embedder_for
from kb.index import active_index, active_model_name
from kb.models import Chunk, Document
from kb.search import SearchResult, search_chunks
from ops.reembed import ReembedError, reembed
from tests.conftest import World, embedding_storage, reembed_while_searching
from tests.ingest.conftest import upload_bytes, wait_final

pytestmark = pytest.mark.slow

TEXTS = [
    "Glaciers retreat as summer temperatures rise in the Alps.",
    "The quarterly budget shows higher spending on travel.",
    "Vaccination programmes reduced measles cases sharply.",
    "The new office opens in Shenzhen next spring.",
    "Solar panels on the warehouse roof cut electricity bills.",
    "Employees may carry over five days of unused leave.",
    "The database migration finished without downtime.",
    "Bees pollinate the orchards in early April.",
]
QUERY = "How much leave can staff carry into next year?"


def _second_model(path: Path) -> str:
    """A different model, made offline from the bundled one: MiniLM with a
    fixed random projection to 256 dimensions (another size, other vectors)."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer import modules

    from kb.embedding import _bundled_model_path

    base = SentenceTransformer(_bundled_model_path(), device="cpu")
    torch.manual_seed(7)
    dense = modules.Dense(
        in_features=384,
        out_features=256,
        bias=False,
        activation_function=torch.nn.Identity(),
    )
    torch.nn.init.orthogonal_(dense.linear.weight)
    model = SentenceTransformer(
        modules=[base[0], base[1], dense, modules.Normalize()], device="cpu"
    )
    model.save(str(path))
    return str(path)


def _dimensions() -> set[int]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT DISTINCT vector_dims(embedding::vector) FROM kb_chunk")
        return {row[0] for row in cursor.fetchall()}


def _chunk_indexes() -> dict[str, str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'kb_chunk'"
        )
        return dict(cursor.fetchall())


def _assert_search_indexes() -> None:
    """The HNSW index and the collection index with the vectors, on the
    columns in use, and nothing left of the shadow columns'."""
    indexes = _chunk_indexes()
    assert (
        "(collection_id, embedding_model) INCLUDE (id, document_id, embedding)"
        in (indexes["chunk_collection_vector"])
    )
    assert "hnsw (embedding halfvec_cosine_ops)" in indexes["chunk_embedding_hnsw"]
    assert not [name for name in indexes if name.endswith(("_next", "_next_hnsw"))]


def _assert_one_model(result: SearchResult) -> None:
    """The reported similarities are the query's cosine to each passage under
    the model named: impossible if vectors of two models were compared."""
    assert result.embedding_model is not None
    embedder = embedder_for(result.embedding_model)
    query = embedder.encode_query(QUERY)
    passages = embedder.encode([hit.text for hit in result.hits])
    expected = passages @ query
    reported = np.array([hit.similarity for hit in result.hits])
    assert np.allclose(expected, reported, atol=0.02), (expected, reported)


def test_model_change_while_queries_run(ingest_world: World, tmp_path: Path) -> None:
    world = ingest_world
    documents = [
        upload_bytes(
            world, world.collection_a, f"topic-{n}.txt", text.encode()
        ).document
        for n, text in enumerate(TEXTS)
    ]
    assert all(
        d.status == "ready" for d in wait_final([d.pk for d in documents], 120).values()
    )
    readable = Chunk.objects.filter(collection=world.collection_a).count()
    old_model = active_model_name()
    new_model = _second_model(tmp_path / "minilm-256")
    with pytest.raises(ReembedError, match="already uses"):
        reembed(model_name=old_model)

    switch = reembed_while_searching(
        new_model,
        lambda: search_chunks(user=world.bob, query=QUERY, mode="dense"),
        timeout=60,
    )
    index, results, errors = switch.index, switch.results, switch.errors
    assert not errors, errors
    assert index.model_name == new_model and index.dimensions == 256
    assert not index.pending_model
    assert {r.embedding_model for r in results} == {old_model, new_model}
    # Every query found every passage bob may read, before, during and after.
    assert {len(r.hits) for r in results} == {readable}
    for model in (old_model, new_model):
        made = [r for r in results if r.embedding_model == model]
        for result in (made[0], made[-1]):
            _assert_one_model(result)
    assert _dimensions() == {256}
    # The new column keeps its vectors in the rows, as the one it replaced,
    # and in the collection index.
    assert embedding_storage() == "p"
    _assert_search_indexes()
    assert set(Chunk.objects.values_list("embedding_model", flat=True)) == {new_model}
    best = search_chunks(user=world.bob, query=QUERY, mode="dense").hits[0]
    assert "leave" in best.text

    # The worker embeds new uploads with the index's model.
    later = upload_bytes(
        world, world.collection_a, "later.txt", b"Parental leave lasts sixteen weeks."
    ).document
    assert wait_final([later.pk], 180)[later.pk].status == Document.Status.READY
    assert set(
        Chunk.objects.filter(document=later).values_list("embedding_model", flat=True)
    ) == {new_model}
    _assert_one_model(search_chunks(user=world.bob, query=QUERY, mode="dense"))

    # And back: the installation ends as it began.
    reembed(model_name=old_model)
    assert active_index().dimensions == 384 and _dimensions() == {384}
    assert embedding_storage() == "p"
    _assert_search_indexes()
    _assert_one_model(search_chunks(user=world.bob, query=QUERY, mode="dense"))


def test_a_new_install_takes_the_configured_model_at_start_up(
    ingest_world: World, tmp_path: Path
) -> None:
    """What the launcher runs before the first upload: an empty index takes
    EMBEDDING_MODEL (another size included); once it holds chunks, the
    command only says how to switch."""
    from io import StringIO

    from django.core.management import call_command

    english = active_model_name()
    other = _second_model(tmp_path / "minilm-256")
    # A new install: the personas' welcome document is not there yet.
    wait_final([ingest_world.document_a.pk], 120)
    Document.objects.all().delete()
    assert not Chunk.objects.exists()
    try:
        call_command("reembed", "--model", other, "--only-if-empty", stdout=StringIO())
        index = active_index()
        assert (index.model_name, index.dimensions) == (other, 256)
        assert _dimensions() in (set(), {256})
        # Started again with the same setting: nothing to do.
        call_command("reembed", "--model", other, "--only-if-empty", stdout=StringIO())
        document = upload_bytes(
            ingest_world, ingest_world.collection_a, "a.txt", TEXTS[0].encode()
        ).document
        assert wait_final([document.pk], 120)[document.pk].status == "ready"
        out = StringIO()
        call_command("reembed", "--model", english, "--only-if-empty", stdout=out)
        assert "run `manage.py reembed --model" in out.getvalue()
        assert active_index().model_name == other and _dimensions() == {256}
    finally:
        reembed(model_name=english)
    assert active_index().dimensions == 384


def test_a_new_install_measures_the_multilingual_model_and_takes_it_if_fast(
    ingest_world: World, settings: Any
) -> None:
    """Without EMBEDDING_MODEL the launcher runs ``reembed --model auto
    --only-if-empty``: the multilingual model is measured here and taken
    only when it embeds fast enough; an index with chunks is left alone."""
    from io import StringIO

    from django.core.cache import cache
    from django.core.management import CommandError, call_command

    from ops.embedding_choice import CACHE_KEY, MULTILINGUAL_MODEL

    english = active_model_name()
    wait_final([ingest_world.document_a.pk], 120)
    Document.objects.all().delete()
    cache.delete(CACHE_KEY)
    try:
        with pytest.raises(CommandError, match="--only-if-empty"):
            call_command("reembed", "--model", "auto", stdout=StringIO())
        settings.EMBEDDING_AUTO_MIN_CHUNKS_PER_SECOND = 1e9
        out = StringIO()
        call_command("reembed", "--model", "auto", "--only-if-empty", stdout=out)
        assert "passages a second here (below 1e+09)" in out.getvalue()
        assert f"EMBEDDING_MODEL={MULTILINGUAL_MODEL}" in out.getvalue()
        assert active_index().model_name == english
        measured = cache.get(CACHE_KEY)
        assert isinstance(measured, float) and measured > 0

        settings.EMBEDDING_AUTO_MIN_CHUNKS_PER_SECOND = measured / 2
        out = StringIO()
        call_command("reembed", "--model", "auto", "--only-if-empty", stdout=out)
        assert "finds documents across the two" in out.getvalue()
        index = active_index()
        assert (index.model_name, index.dimensions) == (MULTILINGUAL_MODEL, 768)

        document = upload_bytes(
            ingest_world, ingest_world.collection_a, "a.txt", TEXTS[0].encode()
        ).document
        assert wait_final([document.pk], 180)[document.pk].status == "ready"
        assert _dimensions() == {768}
        # Chunks exist now: nothing is measured and nothing changes.
        out = StringIO()
        call_command("reembed", "--model", "auto", "--only-if-empty", stdout=out)
        assert out.getvalue() == ""
        assert active_index().model_name == MULTILINGUAL_MODEL
    finally:
        cache.delete(CACHE_KEY)
        reembed(model_name=english)
    assert active_index().dimensions == 384
