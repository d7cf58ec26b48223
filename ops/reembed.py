"""Changing the embedding model without downtime.

1. Shadow columns ``embedding_next`` (the new model's dimensions) and
   ``embedding_model_next`` are added to ``kb_chunk``; search and ingestion
   keep using ``embedding`` and the index's current model.
2. Every chunk is embedded by the new model in batches, outside any long
   transaction, with progress on the ``EmbeddingIndex`` row. The run can be
   stopped and started again: it continues where it stopped.
3. The new HNSW index and the new collection index (which carries the
   vectors for the exact scan) are built ``CONCURRENTLY`` (reads and writes
   go on).
4. Chunks written meanwhile by ingestion are caught up.
5. The switch is one transaction: it waits for in-flight chunk writes (they
   hold the index row ``FOR SHARE``), blocks new ones, checks that nothing is
   left to embed, then renames the columns and the index and records the new
   model. Searches wait for it only for the instant of the renames; each
   search reads the model in the same statement (and snapshot) as the
   chunks, and compares its query only with chunks of that model, so results
   never mix models.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import OperationalError, connection, transaction
from django.utils import timezone

from accounts.models import AuditEvent
from accounts.services import audit_record
from kb.embedding import Embedder, embedder_for, vector_literal
from kb.index import INDEX_ROW, active_index
from kb.models import EmbeddingIndex, vector_storage

logger = logging.getLogger(__name__)

Progress = Callable[[str], None]
BATCH_CHUNKS = 256


@dataclass(frozen=True)
class _NextIndex:
    """An index built on the shadow columns, renamed in the switch to the
    name the model gives it (dropping the old columns drops the old one)."""

    name: str
    final_name: str
    kind: str
    definition: str


NEXT_INDEXES = (
    _NextIndex(
        "chunk_embedding_next_hnsw",
        "chunk_embedding_hnsw",
        "HNSW",
        "USING hnsw (embedding_next halfvec_cosine_ops) "
        "WITH (m = 16, ef_construction = 64)",
    ),
    # kb.models.Chunk's collection index, with the vectors for the exact scan.
    _NextIndex(
        "chunk_collection_vector_next",
        "chunk_collection_vector",
        "collection",
        "(collection_id, embedding_model_next) INCLUDE (id, document_id, embedding_next)",
    ),
)
SWITCH_ATTEMPTS = 20


class ReembedError(Exception):
    """The model cannot be changed; the message says why."""


def _column_dimensions(cursor: Any, column: str) -> int | None:
    cursor.execute(
        "SELECT atttypmod FROM pg_attribute WHERE attrelid = 'kb_chunk'::regclass "
        "AND attname = %s AND NOT attisdropped",
        [column],
    )
    row = cursor.fetchone()
    return None if row is None else int(row[0])


def _prepare_columns(dimensions: int, restart: bool) -> None:
    with connection.cursor() as cursor:
        existing = _column_dimensions(cursor, "embedding_next")
        if existing is not None and (restart or existing != dimensions):
            for index in NEXT_INDEXES:
                cursor.execute(f"DROP INDEX IF EXISTS {index.name}")
            cursor.execute(
                "ALTER TABLE kb_chunk DROP COLUMN embedding_next, "
                "DROP COLUMN IF EXISTS embedding_model_next"
            )
            existing = None
        if existing is None:
            # No default, no rewrite: adding nullable columns is instant.
            cursor.execute(
                f"ALTER TABLE kb_chunk ADD COLUMN embedding_next halfvec({int(dimensions)}), "
                "ADD COLUMN IF NOT EXISTS embedding_model_next varchar(200)"
            )
            # In the row, as the column it replaces (kb.models.vector_storage).
            cursor.execute(
                "ALTER TABLE kb_chunk ALTER COLUMN embedding_next "
                f"SET STORAGE {vector_storage(int(dimensions))}"
            )


def _embed_missing(embedder: Embedder, progress: Progress, total: int) -> int:
    """Embed chunks that have no new vector yet; returns how many it did."""
    done = 0
    already = _embedded_count()
    last_id = 0
    while True:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT id, text FROM kb_chunk WHERE embedding_next IS NULL AND id > %s "
                "ORDER BY id LIMIT %s",
                [last_id, BATCH_CHUNKS],
            )
            rows = cursor.fetchall()
        if not rows:
            return done
        vectors = embedder.encode([text for _id, text in rows])
        with connection.cursor() as cursor:
            # A chunk deleted meanwhile simply matches nothing.
            cursor.execute(
                "UPDATE kb_chunk AS c SET embedding_next = v.embedding::halfvec, "
                "embedding_model_next = %s "
                "FROM unnest(%s::bigint[], %s::text[]) AS v(id, embedding) "
                "WHERE c.id = v.id",
                [
                    embedder.model_name,
                    [row[0] for row in rows],
                    [vector_literal(vector) for vector in vectors],
                ],
            )
        done += len(rows)
        last_id = rows[-1][0]
        EmbeddingIndex.objects.filter(pk=INDEX_ROW).update(
            pending_done=already + done, pending_total=max(total, already + done)
        )
        progress(f"Re-embedded {already + done:,} of {total:,} chunks.")


def _embedded_count() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM kb_chunk WHERE embedding_next IS NOT NULL")
        return int(cursor.fetchone()[0])


def _build_indexes(progress: Progress) -> None:
    with connection.cursor() as cursor:
        for index in NEXT_INDEXES:
            cursor.execute(
                "SELECT i.indisvalid FROM pg_index i "
                "JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname = %s",
                [index.name],
            )
            row = cursor.fetchone()
            if row is not None and row[0]:
                continue
            if row is not None:  # left invalid by an interrupted build
                cursor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {index.name}")
            progress(
                f"Building the new {index.kind} index "
                "(search and uploads go on meanwhile)."
            )
            cursor.execute(
                f"CREATE INDEX CONCURRENTLY {index.name} ON kb_chunk {index.definition}"
            )


def _switch(model_name: str, dimensions: int) -> bool:
    """Swap the columns in one transaction; False when chunks written since
    the last catch-up still lack a new vector (the caller catches up and
    tries again, so no embedding happens under the lock)."""
    with transaction.atomic(), connection.cursor() as cursor:
        # Waits for ingestion writes in flight; blocks new ones until commit.
        cursor.execute("SET LOCAL lock_timeout = '10s'")
        cursor.execute(
            "SELECT 1 FROM kb_embeddingindex WHERE id = %s FOR UPDATE", [INDEX_ROW]
        )
        cursor.execute("LOCK TABLE kb_chunk IN SHARE ROW EXCLUSIVE MODE")
        cursor.execute(
            "SELECT EXISTS (SELECT 1 FROM kb_chunk WHERE embedding_next IS NULL)"
        )
        if cursor.fetchone()[0]:
            return False
        # Searches in flight finish first; new ones wait for these renames.
        cursor.execute("SET LOCAL lock_timeout = '5s'")
        cursor.execute("LOCK TABLE kb_chunk IN ACCESS EXCLUSIVE MODE")
        cursor.execute("ALTER TABLE kb_chunk DROP COLUMN embedding")
        cursor.execute("ALTER TABLE kb_chunk RENAME COLUMN embedding_next TO embedding")
        cursor.execute("ALTER TABLE kb_chunk DROP COLUMN embedding_model")
        cursor.execute(
            "ALTER TABLE kb_chunk RENAME COLUMN embedding_model_next TO embedding_model"
        )
        cursor.execute(
            "ALTER TABLE kb_chunk ALTER COLUMN embedding SET NOT NULL, "
            "ALTER COLUMN embedding_model SET NOT NULL"
        )
        for index in NEXT_INDEXES:
            cursor.execute(f"ALTER INDEX {index.name} RENAME TO {index.final_name}")
        previous = active_index().model_name
        audit_record(
            action=AuditEvent.Action.EMBEDDING_MODEL_CHANGED,
            details={"from": previous, "to": model_name, "dimensions": dimensions},
        )
        EmbeddingIndex.objects.filter(pk=INDEX_ROW).update(
            model_name=model_name,
            dimensions=dimensions,
            activated_at=timezone.now(),
            pending_model="",
            pending_dimensions=None,
            pending_done=0,
            pending_total=0,
            pending_started_at=None,
        )
    return True


def index_is_empty() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT NOT EXISTS (SELECT 1 FROM kb_chunk)")
        return bool(cursor.fetchone()[0])


def reembed(
    *, model_name: str, restart: bool = False, progress: Progress = logger.info
) -> EmbeddingIndex:
    """Rebuild every chunk's vector with ``model_name`` and switch to it."""
    index = active_index()
    progress(f"Loading {model_name}.")
    try:
        embedder = embedder_for(model_name)
    except Exception as exc:
        raise ReembedError(f"Could not load {model_name}: {exc}") from exc
    dimensions = embedder.dimensions
    # The same name with other dimensions: a new install whose configured
    # model is not the size of the column the first migration made.
    if (
        index.model_name == model_name
        and index.dimensions == dimensions
        and not index.pending_model
    ):
        raise ReembedError(f"The index already uses {model_name}.")
    if not 1 <= dimensions <= 4000:
        raise ReembedError(
            f"{model_name} makes {dimensions}-dimensional vectors; the index "
            "(halfvec with HNSW) holds at most 4,000."
        )
    restart = restart or (index.pending_model not in ("", model_name))
    _prepare_columns(dimensions, restart)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM kb_chunk")
        total = int(cursor.fetchone()[0])
    EmbeddingIndex.objects.filter(pk=INDEX_ROW).update(
        pending_model=model_name,
        pending_dimensions=dimensions,
        pending_total=total,
        pending_started_at=index.pending_started_at or timezone.now(),
    )
    started = time.monotonic()
    _embed_missing(embedder, progress, total)
    _build_indexes(progress)
    for attempt in range(1, SWITCH_ATTEMPTS + 1):
        _embed_missing(embedder, progress, total)
        try:
            if _switch(model_name, dimensions):
                break
        except OperationalError as exc:  # a lock timeout: busy, try again
            logger.info("Switch attempt %s waited too long (%s)", attempt, exc)
        time.sleep(min(0.2 * attempt, 2.0))
    else:
        raise ReembedError(
            "Could not switch models: chunks kept arriving or the table stayed "
            "locked. Run the command again; it continues where it stopped."
        )
    progress(
        f"Switched to {model_name} ({dimensions} dimensions) in "
        f"{time.monotonic() - started:.1f} s."
    )
    return active_index()
