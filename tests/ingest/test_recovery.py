"""A worker killed with SIGKILL mid-ingestion: the reaper re-queues the job, a
new worker finishes it, and the document ends ready exactly once."""

from __future__ import annotations

import datetime as dt
import time

import pytest
import redis
from django.conf import settings
from django.utils import timezone

from core.heartbeat import PROCESS_KEY_PREFIX, live_worker_names
from ingest.pipeline import reap_stalled
from kb.models import Chunk, Document
from tests.conftest import World
from tests.ingest.conftest import FORMATS, upload, wait_final

pytestmark = pytest.mark.slow

BIG = FORMATS / "handbook-872p.docx"
# A dead process's liveness key expires within 30 s of its last write.
RECOVERY_SECONDS = 45


def _wait_status(document_id: int, statuses: set[str], timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = Document.objects.get(pk=document_id).status
        if status in statuses:
            return status
        time.sleep(0.2)
    raise AssertionError(f"document {document_id} never reached {statuses}")


def test_kill_9_mid_ingestion_ends_ready_exactly_once(
    ingest_world: World, celery_worker
) -> None:
    world = ingest_world
    reference = upload(world, world.collection_b, BIG).document
    expected_chunks = wait_final([reference.pk], timeout=600)[reference.pk].chunk_count
    assert expected_chunks > 100

    victim = upload(world, world.collection_a, BIG).document
    _wait_status(victim.pk, {"parsing", "chunking", "embedding"}, timeout=120)
    celery_worker.kill_hard()  # the worker, its pool and its parser process
    assert Document.objects.get(pk=victim.pk).status in {
        "parsing",
        "chunking",
        "embedding",
    }

    claimed_by = Document.objects.get(pk=victim.pk).claimed_by
    assert claimed_by  # the pool process that had it keeps a liveness key
    celery_worker.start(wait=False)  # a new worker on the same queues
    restarted = time.monotonic()
    client = redis.Redis.from_url(settings.REDIS_URL)
    deadline = restarted + 60
    while len(live_worker_names(client)) < 1 and time.monotonic() < deadline:
        time.sleep(0.2)
    # The reaper as beat runs it, with the long stall threshold: the dead
    # process's expired key is what frees the job.
    while not reap_stalled()["requeued"]:
        assert time.monotonic() - restarted < RECOVERY_SECONDS, "never re-queued"
        time.sleep(1)
    requeued_after = time.monotonic() - restarted

    document = wait_final([victim.pk], timeout=600)[victim.pk]
    assert document.status == Document.Status.READY, document.failure_reason
    assert document.attempts == 2
    ordinals = list(
        Chunk.objects.filter(document=document).values_list("ordinal", flat=True)
    )
    assert len(ordinals) == expected_chunks == document.chunk_count
    assert sorted(ordinals) == list(range(expected_chunks))
    # The figures docs/benchmarks.md quotes (pytest -s shows them).
    print(  # noqa: T201
        f"\nre-queued {requeued_after:.1f} s after the restart, ready "
        f"{time.monotonic() - restarted:.1f} s after it"
    )


def test_a_job_that_keeps_dying_stops_being_retried(world: World, settings) -> None:
    """After INGEST_MAX_ATTEMPTS stalls the reaper gives up and says so."""
    long_ago = timezone.now() - dt.timedelta(hours=1)
    Document.objects.filter(pk=world.document_a.pk).update(
        status=Document.Status.PARSING,
        attempts=settings.INGEST_MAX_ATTEMPTS,
        heartbeat_at=long_ago,
    )
    assert reap_stalled(stall_seconds=60) == {"requeued": 0, "failed": 1}
    document = Document.objects.get(pk=world.document_a.pk)
    assert document.status == Document.Status.FAILED
    assert "will not be retried automatically" in document.failure_reason


def test_a_live_process_keeps_its_slow_job(world: World) -> None:
    """A claim whose process still refreshes its key stays, however old its
    heartbeat, until INGEST_STALL_SECONDS; one whose key expired is re-queued."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.set(PROCESS_KEY_PREFIX + "host:1", 1, ex=60)
    client.delete(PROCESS_KEY_PREFIX + "host:2")
    a_while_ago = timezone.now() - dt.timedelta(minutes=5)
    Document.objects.filter(pk=world.document_a.pk).update(
        status=Document.Status.EMBEDDING,
        attempts=1,
        heartbeat_at=a_while_ago,
        claimed_by="host:1",
    )
    assert reap_stalled() == {"requeued": 0, "failed": 0}
    Document.objects.filter(pk=world.document_a.pk).update(claimed_by="host:2")
    assert reap_stalled() == {"requeued": 1, "failed": 0}
    document = Document.objects.get(pk=world.document_a.pk)
    assert (document.status, document.claimed_by) == (Document.Status.QUEUED, "")


def test_a_fresh_heartbeat_is_left_alone(world: World) -> None:
    Document.objects.filter(pk=world.document_a.pk).update(
        status=Document.Status.EMBEDDING, attempts=1, heartbeat_at=timezone.now()
    )
    assert reap_stalled(stall_seconds=60) == {"requeued": 0, "failed": 0}
