"""The Model Context Protocol server at ``/mcp`` (streamable HTTP), for the
assistants of desktop and IDE clients.

Tools: ``list_collections``, ``search``, ``ask`` and ``get_passage``. Every
request carries an API token (``Authorization: Bearer ak_…``): without a
valid one the endpoint answers 401 before MCP sees the request, and each
tool acts as the token's user with the token's scope, through the same
permission filter inside the SQL as the REST API. All four tools read;
``ask`` stores its answer in the token's own conversation, as the REST API
does, which a read-only token may do.

Stateless and JSON-answering, so any web worker serves any request.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections
from django.http.request import validate_host
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.transport_security import TransportSecuritySettings
from starlette.types import ASGIApp, Receive, Scope, Send

from accounts.directory import DirectoryUnavailable
from accounts.directory_checks import authenticate_token
from accounts.models import ApiToken, User
from inference import services
from inference.queue import QueueFull
from kb.models import Action, Chunk, Collection
from kb.search import SearchFilters, chunk_url, search_chunks

PATH = "/mcp"
CALLER = "archivist.caller"
SEARCH_LIMIT_MAX = 50
T = TypeVar("T")

server = MCPServer(
    name="archivist",
    instructions=(
        "Archivist is a company's private knowledge base. list_collections shows "
        "what this token may read; search finds passages; ask answers a question "
        "from them with numbered citations; get_passage reads one passage whole."
    ),
)


@dataclass(frozen=True)
class Caller:
    user: User
    token: ApiToken


def _bearer(header: str) -> str:
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" else ""


def _authenticate(header: str) -> Caller | None:
    token = authenticate_token(_bearer(header))
    return None if token is None else Caller(token.user, token)


async def _in_thread(function: Callable[..., T], *args: Any) -> T:
    """Django code (the ORM) off the event loop, in a worker thread whose
    database connection is closed afterwards."""

    def run() -> T:
        close_old_connections()
        try:
            return function(*args)
        finally:
            close_old_connections()

    return await sync_to_async(run, thread_sensitive=False)()


async def _caller(ctx: Context) -> Caller:
    """Who calls: as BearerTokenRequired found them for this request."""
    request = ctx.request_context.request
    if request is None:
        raise ToolError("The API token is missing, expired or revoked.")
    caller = request.scope.get("state", {}).get(CALLER)
    if caller is None:
        header = request.headers.get("authorization", "")
        caller = await _in_thread(_authenticate, header)
    if caller is None:
        raise ToolError("The API token is missing, expired or revoked.")
    return caller


def _collections(caller: Caller) -> list[dict[str, Any]]:
    readable = Collection.objects.for_user(caller.user, Action.VIEW, token=caller.token)
    return [
        {"id": c.pk, "name": c.name, "description": c.description}
        for c in readable.order_by("name")
    ]


@server.tool()
async def list_collections(ctx: Context) -> dict[str, Any]:
    """The collections this token may read: id, name and description."""
    return {"collections": await _in_thread(_collections, await _caller(ctx))}


def _search(
    caller: Caller, query: str, collection_ids: list[int], limit: int
) -> list[dict[str, Any]]:
    result = search_chunks(
        user=caller.user,
        query=query,
        limit=limit,
        token=caller.token,
        filters=SearchFilters(collection_ids=tuple(collection_ids)),
    )
    return [hit.as_dict() for hit in result.hits]


@server.tool()
async def search(
    query: str, ctx: Context, collection_ids: list[int] | None = None, limit: int = 10
) -> dict[str, Any]:
    """Passages matching ``query`` (Chinese or English), best first, from the
    collections this token may read, or only from ``collection_ids``."""
    if not query.strip() or len(query) > services.QUESTION_MAX_CHARS:
        raise ToolError(
            f"The query must have 1 to {services.QUESTION_MAX_CHARS} characters."
        )
    limit = max(1, min(limit, SEARCH_LIMIT_MAX))
    caller = await _caller(ctx)
    hits = await _in_thread(_search, caller, query, collection_ids or [], limit)
    return {"results": hits}


def _ask(caller: Caller, question: str, collection_ids: list[int]) -> dict[str, Any]:
    try:
        events = services.ask(
            user=caller.user,
            question=question,
            token=caller.token,
            collection_ids=tuple(collection_ids),
        )
    except services.AskError as exc:
        raise ToolError(str(exc)) from exc
    except QueueFull as exc:
        raise ToolError(str(exc)) from exc
    result = services.collect(events)
    return {
        "status": result.get("status"),
        "answer": result.get("answer", ""),
        "error": result.get("error"),
        "citations": result.get("citations", []),
        "passages": [
            {key: p[key] for key in ("number", "chunk_id", "title", "page", "url")}
            for p in result.get("passages", [])
        ],
    }


@server.tool()
async def ask(
    question: str, ctx: Context, collection_ids: list[int] | None = None
) -> dict[str, Any]:
    """Answer ``question`` from the collections this token may read (or only
    ``collection_ids``), citing passages as [1], [2]…; says so when they do
    not hold the answer."""
    caller = await _caller(ctx)
    return await _in_thread(_ask, caller, question, collection_ids or [])


def _passage(caller: Caller, chunk_id: int) -> dict[str, Any]:
    if chunk_id not in services.readable_chunk_ids(
        caller.user, caller.token, [chunk_id]
    ):
        # Missing and unreadable look the same, as a 404 does.
        raise ToolError(f"No passage {chunk_id}.")
    chunk = Chunk.objects.select_related("document", "collection").get(pk=chunk_id)
    return {
        "chunk_id": chunk.pk,
        "document_id": chunk.document_id,
        "document_title": chunk.document.title,
        "collection_id": chunk.collection_id,
        "collection_name": chunk.collection.name,
        "page": chunk.page,
        "section": chunk.section_title,
        "text": chunk.text,
        "url": chunk_url(chunk.document_id, chunk.pk, chunk.page),
    }


@server.tool()
async def get_passage(chunk_id: int, ctx: Context) -> dict[str, Any]:
    """One passage whole, with its document, page and address, by the
    ``chunk_id`` that search and ask give."""
    caller = await _caller(ctx)
    return await _in_thread(_passage, caller, chunk_id)


class BearerTokenRequired:
    """No valid token, no MCP: 401 with ``WWW-Authenticate: Bearer``, and a
    Host outside ALLOWED_HOSTS is refused as Django refuses it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {
            k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]
        }
        host = headers.get("host", "").rsplit(":", 1)[0]
        if not validate_host(host, settings.ALLOWED_HOSTS):
            await _refuse(send, 400, "This host is not allowed.")
            return
        try:
            caller = await _in_thread(_authenticate, headers.get("authorization", ""))
        except DirectoryUnavailable:
            await _refuse(
                send,
                503,
                "The company directory could not be reached to confirm this "
                "token's user. Try again in a few minutes.",
            )
            return
        if caller is None:
            await _refuse(
                send,
                401,
                "An API token is required: Authorization: Bearer ak_… "
                "(create one under API tokens).",
            )
            return
        # The tools read it here instead of looking the token up again.
        scope.setdefault("state", {})[CALLER] = caller
        await self.app(scope, receive, send)


async def _refuse(send: Send, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"www-authenticate", b"Bearer"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def mcp_application() -> ASGIApp:
    """The MCP app for config/asgi.py; it also runs the MCP session manager
    through the ASGI lifespan."""
    app = server.streamable_http_app(
        streamable_http_path=PATH,
        stateless_http=True,
        json_response=True,
        # Host checking is BearerTokenRequired's, with Django's ALLOWED_HOSTS.
        transport_security=TransportSecuritySettings(
            enable_dns_rebinding_protection=False
        ),
    )
    guarded = BearerTokenRequired(app)

    async def application(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await app(scope, receive, send)
        else:
            await guarded(scope, receive, send)

    return application
