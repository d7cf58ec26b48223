"""Each collection's document frequencies (how many of its chunks hold each
full-text word) follow its chunks, kept by triggers whatever statement
changes them: search weighs the query's words by them."""

from __future__ import annotations

from django.db import connection

from kb.models import Collection, CollectionTerm, Document
from tests.conftest import World
from tests.kb.test_search import _insert_synthetic_chunks

RECOUNT_SQL = """
SELECT word.lexeme, c.collection_id, count(*)
FROM kb_chunk c CROSS JOIN LATERAL unnest(tsvector_to_array(c.search_vector)) AS word(lexeme)
GROUP BY 1, 2
"""


def _kept() -> set[tuple[str, int, int]]:
    return set(CollectionTerm.objects.values_list("lexeme", "collection_id", "chunks"))


def _recounted() -> set[tuple[str, int, int]]:
    with connection.cursor() as cursor:
        cursor.execute(RECOUNT_SQL)
        return {(lexeme, collection, chunks) for lexeme, collection, chunks in cursor}


def _chunks_holding(word: str, collection: Collection) -> int:
    term = CollectionTerm.objects.filter(lexeme=word, collection=collection).first()
    return 0 if term is None else term.chunks


def test_word_counts_follow_inserts_updates_and_deletes(world: World) -> None:
    first = _insert_synthetic_chunks(world.collection_a, 4, seed=21)
    second = _insert_synthetic_chunks(world.collection_b, 3, seed=22)
    assert _chunks_holding("budget", world.collection_a) == 4
    assert _chunks_holding("budget", world.collection_b) == 3
    assert _kept() == _recounted()

    # New words for some chunks: the old ones lose them, the new ones count.
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE kb_chunk SET search_vector = to_tsvector('simple', 'ledger audit')"
            " WHERE document_id = %s AND ordinal < 2",
            [first.pk],
        )
    assert _chunks_holding("budget", world.collection_a) == 2
    assert _chunks_holding("ledger", world.collection_a) == 2
    assert _kept() == _recounted()

    # A statement that leaves the words as they were changes nothing.
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE kb_chunk SET search_vector = search_vector WHERE document_id = %s",
            [second.pk],
        )
    assert _kept() == _recounted()

    # Chunks moved with their document count in their new collection.
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE kb_chunk SET collection_id = %s WHERE document_id = %s",
            [world.collection_b.pk, first.pk],
        )
    assert _chunks_holding("budget", world.collection_a) == 0
    assert _chunks_holding("budget", world.collection_b) == 5
    assert _kept() == _recounted()

    # A word no chunk holds any more leaves no row behind.
    Document.objects.filter(pk=first.pk).delete()
    assert not CollectionTerm.objects.filter(lexeme="ledger").exists()
    second.delete()
    assert not CollectionTerm.objects.filter(
        collection__in=[world.collection_a, world.collection_b]
    ).exists()
    assert _kept() == _recounted()
