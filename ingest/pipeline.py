"""The ingestion pipeline. A worker claims a document with a conditional
UPDATE (so a duplicate delivery does nothing), parses it in the parser
process, chunks it, and embeds in slices on a helper thread with a
heartbeat; each document whose chunks are all embedded has them replaced in
one short transaction while the next slice is encoded. No transaction is open
while parsing or embedding. The reaper re-queues the jobs of dead workers.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import logging
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.db import (
    InterfaceError,
    OperationalError,
    connection,
    transaction,
)
from django.db.models import F
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from core.heartbeat import claim_name, dead_claims
from core.metrics import (
    INGEST_FAILURES,
    INGEST_STAGE_SECONDS,
    INGESTED_CHUNKS,
    INGESTED_DOCUMENTS,
)
from core.tasks import enqueue_on_commit
from ingest.chunking import ChunkDraft, chunk_elements
from ingest.filetypes import RejectedFile, detect
from ingest.parsing import ParseFailed, parse_file
from kb.embedding import Embedder, vector_literal
from kb.index import INDEX_ROW, index_embedder
from kb.models import Document
from kb.services import collection_touch
from kb.storage import (
    plaintext_path,
)
from kb.text import TEXT_SEARCH_CONFIG, looks_like_navigation, segment

logger = logging.getLogger(__name__)

ACTIVE_STATUSES = (
    Document.Status.PARSING,
    Document.Status.CHUNKING,
    Document.Status.EMBEDDING,
)
HEARTBEAT_EVERY_SECONDS = 5.0
CLAIM_GRACE_SECONDS = 20
INGEST_TASK = "ingest.tasks.ingest_document"
# Parsing companions of a batch stops after this long; the rest go back to the queue.
BATCH_PARSE_BUDGET_SECONDS = 30.0
# Companions stop being parsed once the batch holds this many chunks (about
# 15 s of embedding on two cores); the rest go back to the queue.
BATCH_CHUNK_BUDGET = 2048
# Chunks per encode() call: a slice's rows are written while the next slice
# is encoded, with a heartbeat every slice. Measured here, slices of 64 cost
# 15.5 s of encoding for 2,053 chunks and slices of 256 14.7 s: each call
# ends with the model's streams waiting for its longest batch.
EMBED_SLICE_CHUNKS = 256


class Cancelled(Exception):
    pass


def _claim(document_id: int) -> bool:
    """Move a queued document to parsing; False when someone else has it or it
    is no longer queued (a duplicate delivery, a cancel)."""
    # Every queued document has a task, and most find their document already
    # taken into a companion's batch: plain SQL, not the ORM's compiler.
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE kb_document
               SET status = %s, attempts = attempts + 1, heartbeat_at = now(),
                   progress = 5, failure_reason = '', claimed_by = %s
             WHERE id = %s AND status = %s
            """,
            [
                Document.Status.PARSING,
                claim_name(),
                document_id,
                Document.Status.QUEUED,
            ],
        )
        return cursor.rowcount == 1


def _progress(document_id: int, status: str, progress: int) -> None:
    """Heartbeat and progress; raises Cancelled if the job was cancelled."""
    updated = Document.objects.filter(
        pk=document_id, status__in=ACTIVE_STATUSES
    ).update(status=status, progress=progress, heartbeat_at=timezone.now())
    if not updated:
        raise Cancelled


def _fail(document_id: int, reason: str) -> None:
    stage = (
        Document.objects.filter(pk=document_id).values_list("status", flat=True).first()
    )
    failed = Document.objects.filter(pk=document_id, status__in=ACTIVE_STATUSES).update(
        status=Document.Status.FAILED,
        failure_reason=reason[:2000],
        heartbeat_at=timezone.now(),
    )
    if failed:
        INGEST_FAILURES.labels(stage=stage or "unknown").inc()
        INGESTED_DOCUMENTS.labels(outcome="failed").inc()


class IndexModelChanged(Exception):
    """The index switched embedding models while this batch was embedded."""


def document_ingest(*, document_id: int) -> None:
    """Ingest this document, and with it up to INGEST_BATCH_DOCUMENTS - 1 other
    small queued documents, so their chunks share embedding batches (the model
    is several times faster on full batches than on one abstract at a time)
    and the documents finished by one slice share a write. The others' own
    tasks later find them claimed and do nothing."""
    if not _claim(document_id):
        logger.debug("Document %s is not queued; nothing to do", document_id)
        return
    batch_ids = [document_id, *_claim_companions(exclude=document_id)]
    # One read for the batch (one per document cost a millisecond each).
    documents = Document.objects.in_bulk(batch_ids)
    prepared: list[_Prepared] = []
    chunks = 0
    started = time.monotonic()
    for position, claimed_id in enumerate(batch_ids):
        if position and (
            time.monotonic() - started > BATCH_PARSE_BUDGET_SECONDS
            or chunks >= BATCH_CHUNK_BUDGET
        ):
            # Slow or long files: hand the rest back to the queue rather than
            # keep them waiting behind this batch (and near the task's time limit).
            _release(batch_ids[position:])
            break
        if claimed_id not in documents:  # deleted since it was claimed
            continue
        with _failure_recorded(claimed_id):
            item = _prepare(documents[claimed_id])
            if item is not None:
                prepared.append(item)
                chunks += len(item.drafts)
    INGEST_STAGE_SECONDS.labels(stage="parse").observe(time.monotonic() - started)
    if not prepared:
        return
    for _attempt in range(3):
        # What comes back was embedded by a model that `manage.py reembed`
        # replaced meanwhile: embed it again with the new one, so the index
        # never holds two models.
        prepared = _embed_and_write(prepared)
        if not prepared:
            return
        logger.info("Embedding model changed during ingestion; embedding again")
    raise RuntimeError("The embedding model kept changing during ingestion.")


def _embed_and_write(prepared: list[_Prepared]) -> list[_Prepared]:
    """Embed the batch's chunks slice by slice on the embedding thread and,
    on this thread meanwhile, write every document whose chunks are all
    embedded: PostgreSQL indexes one slice's rows while the model encodes the
    next, instead of the two taking turns. Returns the documents left
    unwritten because the index switched models."""
    embedder = index_embedder()
    totals = {item.document.pk: len(item.drafts) for item in prepared}
    done = dict.fromkeys(totals, 0)
    vectors: dict[int, list[Any]] = {pk: [None] * total for pk, total in totals.items()}
    unwritten = {item.document.pk: item for item in prepared}
    slices = _embedding_slices(prepared)
    _heartbeat_many(list(totals), Document.Status.EMBEDDING, dict.fromkeys(totals, 40))
    # Every slice is queued at once: the embedding thread never waits for a
    # write, and this thread takes the slices in order as they are done.
    encoder = _embedding_thread()
    futures = [
        encoder.submit(_timed_encode, embedder, [text for _pk, _ordinal, text in part])
        for part in slices
    ]
    write_seconds = 0.0
    try:
        for part, future in zip(slices, futures, strict=True):
            encoded, encode_seconds = future.result()
            INGEST_STAGE_SECONDS.labels(stage="embed").observe(encode_seconds)
            for (pk, ordinal, _text), vector in zip(part, encoded, strict=True):
                vectors[pk][ordinal] = vector
                done[pk] += 1
            started = time.monotonic()
            waiting = [pk for pk in unwritten if done[pk] < totals[pk]]
            if waiting:
                _heartbeat_many(
                    waiting,
                    Document.Status.EMBEDDING,
                    {pk: 40 + int(55 * done[pk] / totals[pk]) for pk in waiting},
                )
            complete = [
                item for pk, item in unwritten.items() if done[pk] == totals[pk]
            ]
            if complete:
                try:
                    _write_or_isolate(complete, vectors, embedder.model_name)
                except IndexModelChanged:
                    return list(unwritten.values())
                for item in complete:
                    del unwritten[item.document.pk]
            write_seconds += time.monotonic() - started
    finally:
        # Never leave encoding running into the next task.
        for future in futures:
            future.cancel()
        wait(futures)
        INGEST_STAGE_SECONDS.labels(stage="write").observe(write_seconds)
    return []


def _embedding_slices(prepared: list[_Prepared]) -> list[list[tuple[int, int, str]]]:
    """(document, ordinal, text) in document order, EMBED_SLICE_CHUNKS at a
    time, so documents complete (and are written) one after another."""
    texts = [
        (item.document.pk, ordinal, draft.text)
        for item in prepared
        for ordinal, draft in enumerate(item.drafts)
    ]
    return [
        texts[start : start + EMBED_SLICE_CHUNKS]
        for start in range(0, len(texts), EMBED_SLICE_CHUNKS)
    ]


def _timed_encode(embedder: Embedder, texts: list[str]) -> tuple[np.ndarray, float]:
    started = time.monotonic()
    encoded = embedder.encode(texts)
    return encoded, time.monotonic() - started


@functools.cache
def _embedding_thread() -> ThreadPoolExecutor:
    """One thread per worker process, made at its first batch (after the
    fork). The model releases the GIL while it encodes."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-embed")


def _write_or_isolate(
    items: list[_Prepared], vectors: dict[int, list[Any]], model_name: str
) -> None:
    try:
        _write_batch(items, vectors, model_name)
    except (OperationalError, InterfaceError, IndexModelChanged):
        raise
    except Exception:
        # One document's rows broke the shared statement: write each alone so
        # only that one fails, with its reason.
        logger.exception("Batch write failed; writing documents one by one")
        for item in items:
            with _failure_recorded(item.document.pk):
                _write_batch([item], vectors, model_name)


@dataclass
class _Prepared:
    document: Document
    drafts: list[ChunkDraft]
    pages: int | None
    notes: list[str]


def _release(document_ids: list[int]) -> None:
    for document_id in document_ids:
        released = Document.objects.filter(
            pk=document_id, status=Document.Status.PARSING
        ).update(status=Document.Status.QUEUED, progress=0, attempts=F("attempts") - 1)
        if released:
            enqueue_on_commit(INGEST_TASK, document_id)


def _claim_companions(*, exclude: int) -> list[int]:
    limit = settings.INGEST_BATCH_DOCUMENTS - 1
    if limit <= 0:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE kb_document
               SET status = %s, attempts = attempts + 1, heartbeat_at = now(),
                   progress = 5, failure_reason = '', claimed_by = %s
             WHERE id IN (
                   SELECT id FROM kb_document
                    WHERE status = %s AND id <> %s AND size_bytes <= %s
                    ORDER BY id
                    LIMIT %s
                      FOR UPDATE SKIP LOCKED)
            RETURNING id
            """,
            [
                Document.Status.PARSING,
                claim_name(),
                Document.Status.QUEUED,
                exclude,
                settings.INGEST_BATCH_MAX_BYTES,
                limit,
            ],
        )
        return sorted(row[0] for row in cursor.fetchall())


@contextlib.contextmanager
def _failure_recorded(document_id: int) -> Iterator[None]:
    """One document's failure is that document's, with its reason in the
    uploader's language; the batch and the worker carry on."""
    with translation.override(_uploader_language(document_id)):
        try:
            yield
        except Cancelled:
            logger.info("Ingestion of document %s was cancelled", document_id)
        except (RejectedFile, ParseFailed) as exc:
            _fail(document_id, str(exc))
        except (OperationalError, InterfaceError):
            raise  # the database went away: the task retries with backoff
        except IndexModelChanged:
            raise  # the batch embeds again with the new model
        except Exception:
            # Never leave a job half-way. The exception (which may name a
            # server path) goes to the log; the uploader is told what to do.
            logger.exception("Ingestion of document %s failed", document_id)
            _fail(
                document_id,
                _(
                    "This file could not be processed. Check that it opens in the "
                    "program that made it, save it again and upload it; if it "
                    "fails again, an administrator finds the cause in the "
                    "worker's log under document %(id)d."
                )
                % {"id": document_id},
            )


def _uploader_language(document_id: int) -> str:
    preferred = (
        Document.objects.filter(pk=document_id)
        .values_list("uploaded_by__preferred_language", flat=True)
        .first()
    )
    return preferred or settings.LANGUAGE_CODE


def _prepare(document: Document) -> _Prepared | None:
    document_id = document.pk
    with plaintext_path(document.storage_name) as path:
        drafts, pages, notes = _parse_and_chunk(document, path)
    if not drafts:
        detail = "; ".join(notes)
        _fail(
            document_id,
            _("No text could be extracted from this file.")
            + (f" ({detail})" if detail else ""),
        )
        return None
    return _Prepared(document, drafts, pages, notes)


def _parse_and_chunk(
    document: Document, path: Path
) -> tuple[list[ChunkDraft], int | None, list[str]]:
    if not path.exists():
        raise ParseFailed(_("The stored file is missing; upload the document again."))
    detected = detect(path, document.original_filename)
    last_beat = time.monotonic()

    def beat() -> None:
        nonlocal last_beat
        if time.monotonic() - last_beat >= HEARTBEAT_EVERY_SECONDS:
            _progress(document.pk, Document.Status.PARSING, 10)
            last_beat = time.monotonic()

    result = parse_file(path, detected, on_wait=beat)
    drafts = chunk_elements(result.elements, max_chars=settings.CHUNK_MAX_CHARS)
    return drafts, result.pages, result.notes


def _heartbeat_many(ids: list[int], status: str, progress: dict[int, int]) -> None:
    """One statement for the whole batch; cancelled documents are left alone
    (their chunks are not written, see _write_batch)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE kb_document AS d
               SET status = %s, progress = p.progress, heartbeat_at = now()
              FROM unnest(%s::bigint[], %s::int[]) AS p(id, progress)
             WHERE d.id = p.id AND d.status = ANY(%s)
            """,
            [status, ids, [progress[pk] for pk in ids], list(ACTIVE_STATUSES)],
        )


# One statement for every chunk of a batch: arrays in, rows out, the
# tsvector computed by PostgreSQL from the segmented text.
INSERT_CHUNKS_SQL = f"""
    INSERT INTO kb_chunk (document_id, collection_id, ordinal, text, page, section_title,
                          element_types, embedding, embedding_model, search_vector,
                          is_navigation)
    SELECT document_id, collection_id, ordinal, text, page, section_title,
           element_types, embedding::halfvec, %s,
           setweight(to_tsvector('{TEXT_SEARCH_CONFIG}', segmented_title), 'A')
           || to_tsvector('{TEXT_SEARCH_CONFIG}', segmented_text),
           is_navigation
      FROM unnest(%s::bigint[], %s::bigint[], %s::int[], %s::text[], %s::int[],
                  %s::text[], %s::text[], %s::text[], %s::text[], %s::text[],
                  %s::bool[])
           AS c(document_id, collection_id, ordinal, text, page, section_title,
                element_types, embedding, segmented_title, segmented_text,
                is_navigation)
"""  # noqa: S608 - the configuration name is a constant

MARK_READY_SQL = """
    UPDATE kb_document AS d
       SET status = %s, progress = 100, chunk_count = r.chunk_count,
           page_count = r.page_count, failure_reason = r.notes,
           ingested_at = now(), heartbeat_at = now(), archived_at = NULL
      FROM unnest(%s::bigint[], %s::int[], %s::int[], %s::text[])
           AS r(id, chunk_count, page_count, notes)
     WHERE d.id = r.id
"""


ChunkRow = tuple[int, int, int, str, int | None, str, str, str, str, str]


def chunk_rows_insert(
    cursor: Any, rows: Sequence[ChunkRow], *, model_name: str
) -> None:
    """Insert chunk rows (document, collection, ordinal, text, page, section
    title, element types, vector literal, segmented title, segmented text) in
    one statement. Tables of contents and indexes are marked as such."""
    columns: list[list[Any]] = [list(column) for column in zip(*rows, strict=True)]
    if columns:
        navigation = [looks_like_navigation(text) for text in columns[3]]
        cursor.execute(INSERT_CHUNKS_SQL, [model_name, *columns, navigation])


def _write_batch(
    prepared: list[_Prepared], vectors: dict[int, list[Any]], model_name: str
) -> None:
    """Replace the chunks of every prepared document and mark it ready, in one
    short transaction. A document cancelled or deleted meanwhile is skipped:
    its row lock decides who wins. The index's model is read first, under a
    share lock that a model switch must wait for."""
    ids = [item.document.pk for item in prepared]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT model_name FROM kb_embeddingindex WHERE id = %s FOR SHARE",
            [INDEX_ROW],
        )
        index = cursor.fetchone()  # the row exists: embedding read it
        if index is not None and index[0] != model_name:
            raise IndexModelChanged
        cursor.execute(
            "SELECT id FROM kb_document WHERE id = ANY(%s) AND status = %s "
            "ORDER BY id FOR UPDATE",
            [ids, Document.Status.EMBEDDING],
        )
        live = {row[0] for row in cursor.fetchall()}
        items = [item for item in prepared if item.document.pk in live]
        for skipped in set(ids) - live:
            logger.info(
                "Document %s was cancelled or deleted; chunks not written", skipped
            )
        if not items:
            return
        rows = [
            (
                item.document.pk,
                item.document.collection_id,
                ordinal,
                draft.text,
                draft.page,
                draft.section_title,
                ",".join(draft.element_types)[:200],
                vector_literal(vectors[item.document.pk][ordinal]),
                segment(draft.section_title),
                segment(draft.text),
            )
            for item in items
            for ordinal, draft in enumerate(item.drafts)
        ]
        live_ids = [item.document.pk for item in items]
        cursor.execute("DELETE FROM kb_chunk WHERE document_id = ANY(%s)", [live_ids])
        chunk_rows_insert(cursor, rows, model_name=model_name)
        cursor.execute(
            MARK_READY_SQL,
            [
                Document.Status.READY,
                live_ids,
                [len(item.drafts) for item in items],
                [item.pages for item in items],
                ["; ".join(item.notes)[:2000] for item in items],
            ],
        )
        for collection_id in sorted({item.document.collection_id for item in items}):
            collection_touch(collection_id=collection_id)
    INGESTED_DOCUMENTS.labels(outcome="ready").inc(len(items))
    INGESTED_CHUNKS.inc(len(rows))


def reap_stalled(*, stall_seconds: int | None = None) -> dict[str, int]:
    """Re-queue jobs whose worker is gone, or fail them for good after
    INGEST_MAX_ATTEMPTS tries. A job is the reaper's when its claiming
    process's liveness key has expired (it died: about a minute), or when its
    heartbeat is older than INGEST_STALL_SECONDS (a hung worker, or one that
    keeps no liveness key)."""
    stall = (
        stall_seconds if stall_seconds is not None else settings.INGEST_STALL_SECONDS
    )
    now = timezone.now()
    active = Document.objects.filter(status__in=ACTIVE_STATUSES)
    stalled = set(
        active.filter(heartbeat_at__lt=now - dt.timedelta(seconds=stall)).values_list(
            "pk", flat=True
        )
    )
    # A claim younger than the grace may belong to a process whose first
    # liveness write has not landed yet.
    claimed = dict(
        active.exclude(claimed_by="")
        .filter(heartbeat_at__lt=now - dt.timedelta(seconds=CLAIM_GRACE_SECONDS))
        .values_list("pk", "claimed_by")
    )
    gone = dead_claims(set(claimed.values()))
    orphaned = {pk for pk, name in claimed.items() if name in gone}
    reaped = Document.objects.filter(pk__in=stalled | orphaned)
    given_up = reaped.filter(attempts__gte=settings.INGEST_MAX_ATTEMPTS).update(
        status=Document.Status.FAILED,
        failure_reason=_(
            "Ingestion stopped %(attempts)d times without finishing (the worker died or hung); "
            "it will not be retried automatically. Check the file, then press Retry."
        )
        % {"attempts": settings.INGEST_MAX_ATTEMPTS},
    )
    requeued_ids = []
    for document in reaped.filter(status__in=ACTIVE_STATUSES).values(
        "pk", "heartbeat_at", "claimed_by"
    ):
        # Only if nobody touched it since it was read: a live worker's
        # heartbeat or a new claim wins.
        if Document.objects.filter(
            pk=document["pk"],
            status__in=ACTIVE_STATUSES,
            heartbeat_at=document["heartbeat_at"],
            claimed_by=document["claimed_by"],
        ).update(status=Document.Status.QUEUED, progress=0, claimed_by=""):
            requeued_ids.append(document["pk"])
    for document_id in requeued_ids:
        enqueue_on_commit(INGEST_TASK, document_id)
    if requeued_ids or given_up:
        logger.warning(
            "Reaper re-queued %s documents of dead or stalled workers and gave up on %s",
            len(requeued_ids),
            given_up,
        )
    return {"requeued": len(requeued_ids), "failed": given_up}
