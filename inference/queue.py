"""The ask queue: at most ``ASK_CONCURRENCY`` answers use the language model
at once, the rest wait their turn in arrival order, and past
``ASK_QUEUE_LIMIT`` waiting questions a new one is refused with a time to
retry.

Why here and not in the LLM server: a CPU llama.cpp server answers one
request at a time and queues the others invisibly, so a queued request ran
into its first-token deadline and the asker saw "did not start answering in
time". Waiting here, the asker sees their place ("2 questions ahead of
yours"), and the deadline starts only once the model is theirs.

Shared by every web and worker process through Redis:
- ``TICKETS`` is a sorted set of tickets by arrival; the first
  ``ASK_CONCURRENCY`` hold the model, the rest wait.
- each ticket has a key ``ALIVE_PREFIX + ticket`` with a short expiry, which
  its process refreshes while it holds the ticket; a process that died
  leaves a ticket whose key expires, and the next waiter removes it.
If Redis cannot be reached, answers go straight to the model (as before the
queue existed) rather than fail.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
import uuid
from collections.abc import Iterator
from typing import cast

import redis
from django.conf import settings
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from core.redis_pool import redis_client

logger = logging.getLogger(__name__)

TICKETS = "archivist:ask:tickets"
SEQUENCE = "archivist:ask:sequence"
ALIVE_PREFIX = "archivist:ask:alive:"
# Seconds the model was held per answer, averaged: the basis of Retry-After.
HOLD_SECONDS = "archivist:ask:hold-seconds"
ALIVE_SECONDS = 30
REFRESH_EVERY_SECONDS = 5.0
POLL_SECONDS = 0.5
# A waiting asker hears their place at least this often, so that proxies and
# clients see a live stream.
REPEAT_POSITION_SECONDS = 10.0
DEFAULT_HOLD_SECONDS = 20.0


class QueueFull(Exception):
    """Too many questions are waiting; ``retry_after`` seconds is a fair wait."""

    def __init__(self, waiting: int, retry_after: int) -> None:
        self.waiting = waiting
        self.retry_after = retry_after
        super().__init__(
            _(
                "%(waiting)d questions are waiting for the language model; "
                "ask again in about %(seconds)d seconds."
            )
            % {"waiting": waiting, "seconds": retry_after}
        )


def position_message(ahead: int) -> str:
    return ngettext(
        "%(n)d question ahead of yours.", "%(n)d questions ahead of yours.", ahead
    ) % {"n": ahead}


class _Keeper:
    """Refreshes the liveness keys of the tickets this process holds."""

    def __init__(self) -> None:
        self._tickets: set[str] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def hold(self, ticket: str) -> None:
        with self._lock:
            self._tickets.add(ticket)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="ask-queue-keeper", daemon=True
                )
                self._thread.start()

    def drop(self, ticket: str) -> None:
        with self._lock:
            self._tickets.discard(ticket)

    def _run(self) -> None:
        while True:
            time.sleep(REFRESH_EVERY_SECONDS)
            with self._lock:
                tickets = list(self._tickets)
            if not tickets:
                continue
            try:
                pipe = redis_client().pipeline(transaction=False)
                for ticket in tickets:
                    pipe.set(ALIVE_PREFIX + ticket, 1, ex=ALIVE_SECONDS)
                pipe.execute()
            except redis.RedisError as exc:
                logger.warning("Could not refresh ask-queue tickets: %s", exc)


_keeper = _Keeper()


class AskQueue:
    def __init__(self) -> None:
        self.slots = settings.ASK_CONCURRENCY
        self.limit = settings.ASK_QUEUE_LIMIT

    def admit(self) -> None:
        """Raise QueueFull when a new question would wait past the bound."""
        try:
            count = int(redis_client().zcard(TICKETS))
            count -= self._prune(count)
        except redis.RedisError:
            return
        waiting = max(0, count - self.slots)
        if waiting >= self.limit:
            raise QueueFull(waiting, self.retry_after(waiting))

    def retry_after(self, waiting: int) -> int:
        try:
            held = float(redis_client().get(HOLD_SECONDS) or DEFAULT_HOLD_SECONDS)
        except (redis.RedisError, ValueError):
            held = DEFAULT_HOLD_SECONDS
        return max(1, math.ceil(held * (waiting + 1) / self.slots))

    def join(self) -> str | None:
        """A new ticket at the back of the queue (None without Redis)."""
        ticket = uuid.uuid4().hex
        try:
            client = redis_client()
            sequence = int(client.incr(SEQUENCE))
            pipe = client.pipeline()
            pipe.set(ALIVE_PREFIX + ticket, 1, ex=ALIVE_SECONDS)
            pipe.zadd(TICKETS, {ticket: sequence})
            pipe.execute()
        except redis.RedisError as exc:
            logger.warning("The ask queue is unavailable, answering directly: %s", exc)
            return None
        _keeper.hold(ticket)
        return ticket

    def ahead(self, ticket: str) -> int:
        """How many answers must start before this one may: 0 means its turn."""
        rank = redis_client().zrank(TICKETS, ticket)
        if rank is None:
            # Removed as dead while its process was stalled: back in line,
            # alive again.
            client = redis_client()
            client.set(ALIVE_PREFIX + ticket, 1, ex=ALIVE_SECONDS)
            client.zadd(TICKETS, {ticket: int(client.incr(SEQUENCE))})
            rank = client.zrank(TICKETS, ticket)
        rank = int(cast(int, rank or 0))
        if rank >= self.slots and self._prune(rank):
            return self.ahead(ticket)
        return max(0, rank - self.slots + 1)

    def _prune(self, upto: int) -> int:
        """Remove the tickets, among the first ``upto``, whose process died."""
        client = redis_client()
        tickets = [
            bytes(t).decode()
            for t in cast(list[bytes], client.zrange(TICKETS, 0, upto))
        ]
        if not tickets:
            return 0
        alive = client.mget([ALIVE_PREFIX + t for t in tickets])
        dead = [t for t, flag in zip(tickets, alive, strict=True) if flag is None]
        if dead:
            client.zrem(TICKETS, *dead)
            logger.warning(
                "Removed %d ask-queue tickets of stopped processes", len(dead)
            )
        return len(dead)

    def leave(self, ticket: str, held_seconds: float | None) -> None:
        _keeper.drop(ticket)
        try:
            client = redis_client()
            pipe = client.pipeline()
            pipe.zrem(TICKETS, ticket)
            pipe.delete(ALIVE_PREFIX + ticket)
            pipe.execute()
            if held_seconds is not None:
                previous = float(client.get(HOLD_SECONDS) or held_seconds)
                client.set(HOLD_SECONDS, round(0.8 * previous + 0.2 * held_seconds, 2))
        except (redis.RedisError, ValueError) as exc:
            logger.warning("Could not leave the ask queue: %s", exc)


class Turn:
    """One answer's place in the queue: taken when the model is first
    needed, kept until ``release``."""

    def __init__(self, queue: AskQueue | None = None) -> None:
        self.queue = queue or AskQueue()
        self.ticket: str | None = None
        self.granted_at: float | None = None
        self.waited_seconds = 0.0

    @property
    def held(self) -> bool:
        return self.granted_at is not None

    def wait(self) -> Iterator[int]:
        """Yield the number of answers ahead, each time it changes (and every
        few seconds), until the model is this answer's."""
        if self.held:
            return
        started = time.monotonic()
        self.ticket = self.queue.join()
        last: int | None = None
        last_told = 0.0
        while self.ticket is not None:
            try:
                ahead = self.queue.ahead(self.ticket)
            except redis.RedisError as exc:
                logger.warning("The ask queue failed, answering directly: %s", exc)
                break
            if ahead == 0:
                break
            now = time.monotonic()
            if ahead != last or now - last_told >= REPEAT_POSITION_SECONDS:
                last, last_told = ahead, now
                yield ahead
            time.sleep(POLL_SECONDS)
        self.granted_at = time.monotonic()
        self.waited_seconds = self.granted_at - started

    def wait_quietly(self) -> None:
        """Wait without telling anyone: background work (summaries)."""
        for _ahead in self.wait():
            pass

    def release(self) -> None:
        if self.ticket is None:
            return
        held = None if self.granted_at is None else time.monotonic() - self.granted_at
        self.queue.leave(self.ticket, held)
        self.ticket = None
        self.granted_at = None


@contextlib.contextmanager
def model_turn() -> Iterator[None]:
    """Hold the model for one background call (a summary's part): it waits
    its turn like an asker, and gives it back straight after."""
    turn = Turn()
    turn.wait_quietly()
    try:
        yield
    finally:
        turn.release()
