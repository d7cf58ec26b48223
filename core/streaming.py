"""Streaming responses that do not hold a web worker while they run.

Under ASGI (the server ``make run`` starts) Django serves a synchronous
iterator by first reading it to the end, which would buffer a whole answer,
or a whole file. ``stream_for`` hands such an iterator to a thread of its own
and gives the server an asynchronous one: the event loop serves other
requests while the answer streams, and a client that goes away stops it (the
iterator is closed, so an answer is recorded as cancelled). Under WSGI, and in
the test client, the iterator is returned as it is.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

from django.core.handlers.asgi import ASGIRequest
from django.db import connections

_DONE = object()


def stream_for(request: Any, chunks: Iterator[bytes]) -> Any:
    """``chunks`` as the server in front of ``request`` serves it best."""
    django_request = getattr(request, "_request", request)  # DRF wraps it
    if isinstance(django_request, ASGIRequest):
        return stream_in_thread(chunks)
    return chunks


async def stream_in_thread(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Any] = asyncio.Queue()
    stop = threading.Event()

    def put(item: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody reads
            loop.call_soon_threadsafe(queue.put_nowait, item)

    def produce() -> None:
        try:
            for chunk in chunks:
                if stop.is_set():
                    break
                put(chunk)
        except BaseException as exc:  # handed to the reader, which re-raises it
            put(exc)
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
            connections.close_all()
            put(_DONE)

    threading.Thread(target=produce, name="stream", daemon=True).start()
    try:
        while True:
            item = await queue.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
