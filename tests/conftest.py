"""Shared fixtures: the real services started by ``tests.harness``."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
import redis
from django.conf import settings
from django.contrib.auth.models import Group
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management.base import CommandError
from django.db import OperationalError, connection
from django.test import TransactionTestCase
from django.utils import timezone

from accounts.models import ApiToken, User
from accounts.services import token_create
from config.launcher import DEFAULT_LLM_ALIAS, ManagedProcess
from core import model_files
from core.heartbeat import live_worker_names
from inference.models import Conversation, Message
from ingest.documents import document_upload
from ingest.pipeline import ACTIVE_STATUSES
from kb.models import Collection, CollectionGrant, Document, EmbeddingIndex, Role
from kb.search import SearchResult
from kb.services import collection_create, grant_set
from ops.reembed import reembed
from tests.harness import embedded_services

FLUSH_ATTEMPTS = 3
_flush_test_database = TransactionTestCase._fixture_teardown


def _flush_test_database_past_deadlocks(test_case: TransactionTestCase) -> None:
    """The flush after a transactional test, again if it lost a deadlock.

    The session's Celery worker stays up for every later test, and a
    transaction of its own (a task still finishing, a heartbeat) can hold a
    row lock the flush's TRUNCATE waits for while waiting on a table the
    TRUNCATE already holds. PostgreSQL then aborts one of the two; when that
    is the flush, the worker goes on and a second flush succeeds. Without
    this the next test started on the last one's rows (a duplicate ``alice``).
    """
    for attempt in range(1, FLUSH_ATTEMPTS + 1):
        try:
            _flush_test_database(test_case)
            return
        except CommandError as error:
            lost_deadlock = isinstance(error.__cause__, OperationalError) and (
                "deadlock detected" in str(error.__cause__)
            )
            if not lost_deadlock or attempt == FLUSH_ATTEMPTS:
                raise
            time.sleep(0.5)


TransactionTestCase._fixture_teardown = _flush_test_database_past_deadlocks


def embedding_storage() -> str:
    """How PostgreSQL stores the chunks' vector column (``p``: in the row)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT attstorage FROM pg_attribute WHERE attrelid = 'kb_chunk'::regclass"
            " AND attname = 'embedding' AND NOT attisdropped"
        )
        return cursor.fetchone()[0]


@dataclass
class SwitchWhileSearching:
    """A model switch and every search made while it ran."""

    index: EmbeddingIndex
    results: list[SearchResult]
    errors: list[BaseException]


def reembed_while_searching(
    model_name: str, search: Callable[[], SearchResult], timeout: float = 120
) -> SwitchWhileSearching:
    """``reembed`` to ``model_name`` while another thread runs ``search``
    without pause, from before the switch starts until after it ends."""
    results: list[SearchResult] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def search_continuously() -> None:
        try:
            while not stop.is_set():
                results.append(search())
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=search_continuously)
    thread.start()
    try:
        time.sleep(0.5)
        index = reembed(model_name=model_name)
        time.sleep(1.0)
    finally:
        stop.set()
        thread.join(timeout=timeout)
    return SwitchWhileSearching(index, results, errors)


def _test_database_url() -> str:
    """DATABASE_URL of the test database pytest-django created."""
    params = connection.settings_dict
    return f"postgresql://{params['USER']}:{params['PASSWORD']}@/{params['NAME']}?host={params['HOST']}"


@pytest.fixture(scope="session")
def llm_base_url() -> str:
    """The real LLM server (llama.cpp + SmolLM2), waited for on first use."""
    services = embedded_services()
    if any(p.name == "llm" for p in services.processes):
        services.process("llm").wait_ready()
    return settings.LLM_BASE_URL


@pytest.fixture(scope="session")
def celery_worker(
    django_db_setup: None, django_db_blocker: pytest.FixtureRequest
) -> Iterator[ManagedProcess]:
    """A real Celery worker process on the test database and the test Redis."""
    services = embedded_services()
    worker = services.start_worker(
        env=services.child_env(DATABASE_URL=_test_database_url()), name="test-worker"
    )
    client = redis.Redis.from_url(settings.REDIS_URL)
    deadline = time.monotonic() + 60
    while not any(name.startswith("test-worker") for name in live_worker_names(client)):
        if not worker.alive():
            pytest.fail(f"The Celery worker died on start; see {worker.log_path}")
        if time.monotonic() > deadline:
            pytest.fail(
                f"The Celery worker sent no heartbeat in 60s; see {worker.log_path}"
            )
        time.sleep(0.2)
    yield worker
    worker.stop()


# -- personas ---------------------------------------------------------------
PASSWORD = "correct horse battery staple 42"


@dataclass
class World:
    """The people and things every permission test reasons about.

    - alice manages collections A and B (direct grants).
    - bob views A through the group "readers"; nothing on B.
    - charlie belongs to no group and holds no grant.
    - admin is a superuser with no grants: staff see collections only in the
      Django admin, never by accident in the portal or the API.
    - token_b is alice's API token limited to collection B (so A is hidden
      from it even though alice manages A).
    - document_a is a small text file in A, queued (no worker runs in plain
      database tests).
    """

    alice: User
    bob: User
    charlie: User
    admin: User
    readers: Group
    collection_a: Collection
    collection_b: Collection
    bob_grant: CollectionGrant
    token_b: ApiToken
    token_b_plaintext: str
    document_a: Document
    # alice's conversation with one question and one answer.
    conversation_a: Conversation
    answer_a: Message


def make_user(username: str, **extra: object) -> User:
    return User.objects.create_user(
        username=username, email=f"{username}@example.com", password=PASSWORD, **extra
    )


@pytest.fixture
def world(db: None) -> World:
    alice = make_user("alice")
    bob = make_user("bob")
    charlie = make_user("charlie")
    admin = User.objects.create_superuser("admin", "admin@example.com", PASSWORD)
    readers = Group.objects.create(name="readers")
    bob.groups.add(readers)
    collection_a = collection_create(
        name="Collection A", description="handbook", creator=alice
    )
    collection_b = collection_create(name="Collection B", creator=alice)
    bob_grant = grant_set(
        collection=collection_a, group=readers, role=Role.VIEWER, actor=alice
    )
    issued = token_create(user=alice, name="bot for B", collection_scoped=True)
    issued.token.collections.set([collection_b])
    document_a = document_upload(
        collection=collection_a,
        uploaded=SimpleUploadedFile("welcome.txt", b"Welcome to the handbook."),
        uploader=alice,
    ).document
    assert document_a is not None
    conversation_a = Conversation.objects.create(user=alice, title="Alice asks")
    Message.objects.create(
        conversation=conversation_a, role=Message.Role.USER, content="Welcome?"
    )
    answer_a = Message.objects.create(
        conversation=conversation_a,
        role=Message.Role.ASSISTANT,
        content="Welcome to the handbook [1].",
    )
    return World(
        alice=alice,
        bob=bob,
        charlie=charlie,
        admin=admin,
        readers=readers,
        collection_a=collection_a,
        collection_b=collection_b,
        bob_grant=bob_grant,
        token_b=issued.token,
        token_b_plaintext=issued.plaintext,
        document_a=document_a,
        conversation_a=conversation_a,
        answer_a=answer_a,
    )


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    """Argon2 is deliberately slow; tests that check hashing ask for it."""
    settings.PASSWORD_HASHERS = [
        "django.contrib.auth.hashers.MD5PasswordHasher",
        *settings.PASSWORD_HASHERS,
    ]


@pytest.fixture
def ingest_world(
    transactional_db: None, celery_worker: ManagedProcess, world: World
) -> Iterator[World]:
    """The personas, committed (the worker reads them), and a live worker."""
    yield world
    _settle_worker(timeout=60)


def _settle_worker(timeout: float) -> None:
    """Let the worker finish before the harness truncates every table.

    A worker still writing inside a transaction when the flush's TRUNCATE
    takes its locks can deadlock with it; the flush then fails and the next
    test starts on the last one's rows. Queued documents are cancelled so no
    new batch starts, running ones are allowed to finish, and then the test
    database must show no other session inside a statement or transaction.
    """
    Document.objects.filter(status=Document.Status.QUEUED).update(
        status=Document.Status.CANCELLED
    )
    deadline = time.monotonic() + timeout
    # A stale heartbeat is a worker a test killed: nobody will finish it.
    running = Document.objects.filter(
        status__in=ACTIVE_STATUSES,
        heartbeat_at__gte=timezone.now() - timedelta(seconds=30),
    )
    while running.exists():
        if time.monotonic() > deadline:
            return
        time.sleep(0.2)
    quiet_since: float | None = None
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute(
                """
                SELECT count(*) FROM pg_stat_activity
                 WHERE datname = current_database() AND pid <> pg_backend_pid()
                   AND backend_type = 'client backend'
                   AND state IN ('active', 'idle in transaction')
                """
            )
            busy = cursor.fetchone()[0]
        now = time.monotonic()
        if busy:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = now
        elif now - quiet_since >= 0.3:
            return
        time.sleep(0.1)


@pytest.fixture(scope="session")
def default_llm_url() -> str:
    """The default model (Qwen2.5-Coder-1.5B-Instruct, assembled and verified
    by core.model_files) on its own llama.cpp server, for the tests of
    answers; the rest of the suite runs its plumbing on a tiny model."""
    services = embedded_services()
    gguf = model_files.assemble(model_files.QWEN_CODER_1_5B, progress=print)
    return services.start_llm(
        gguf=gguf, alias=DEFAULT_LLM_ALIAS, name="llm-default", wait=True
    )
