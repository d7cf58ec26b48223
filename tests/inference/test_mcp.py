"""The MCP server at /mcp, through the official SDK's client against the real
web server: a token sees exactly what it may read, and nothing it does
changes the knowledge base.

alice manages A (Zephyr, Orion) and B (Nightingale); token_b is hers,
limited to B; bob reads A through a group.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import anyio
import httpx
import httpx2
import pytest
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client

from accounts.services import token_create
from kb.models import Chunk, Collection, CollectionGrant, Document
from tests.conftest import World
from tests.inference.conftest import FaultyLLM

TOOLS = {"list_collections", "search", "ask", "get_passage"}


@pytest.fixture
def mcp_url(asgi_server: Callable[..., str], faulty_llm: type[FaultyLLM]) -> str:
    faulty_llm.behaviour = "brief"
    return asgi_server(LLM_BASE_URL=faulty_llm.url) + "/mcp"


def _session(url: str, token: str, calls: list[tuple[str, dict[str, Any]]]) -> Any:
    """Run ``calls`` in one MCP session; each result's JSON, or its error."""

    async def run() -> tuple[set[str], list[Any]]:
        results: list[Any] = []
        async with (
            httpx2.AsyncClient(
                headers={"Authorization": f"Bearer {token}"}, timeout=120
            ) as http,
            streamable_http_client(url, http_client=http) as streams,
            ClientSession(streams[0], streams[1]) as session,
        ):
            await session.initialize()
            names = {tool.name for tool in (await session.list_tools()).tools}
            for name, arguments in calls:
                result = await session.call_tool(name, arguments)
                text = result.content[0].text if result.content else ""
                results.append({"error": text} if result.is_error else json.loads(text))
        return names, results

    return anyio.run(run)


def _chunk(document: Document) -> int:
    return Chunk.objects.filter(document=document).values_list("pk", flat=True)[0]


def test_no_token_no_mcp(mcp_url: str) -> None:
    for headers in ({}, {"Authorization": "Bearer ak_nonsense"}):
        response = httpx.post(
            mcp_url,
            json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
            headers=headers,
        )
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"


def test_a_scoped_token_sees_only_its_collections(mcp_url: str, library: World) -> None:
    zephyr, nightingale = _chunk(library.zephyr), _chunk(library.nightingale)
    names, results = _session(
        mcp_url,
        library.token_b_plaintext,
        [
            ("list_collections", {}),
            ("search", {"query": "Zephyr headphones refund"}),
            (
                "search",
                {"query": "refund", "collection_ids": [library.collection_a.pk]},
            ),
            ("search", {"query": "Nightingale budget"}),
            ("get_passage", {"chunk_id": zephyr}),
            ("get_passage", {"chunk_id": nightingale}),
        ],
    )
    assert names == TOOLS
    listed, anywhere, in_a, budget, hidden, shown = results
    assert [c["id"] for c in listed["collections"]] == [library.collection_b.pk]
    assert {h["collection_id"] for h in anywhere["results"]} <= {
        library.collection_b.pk
    }
    assert in_a["results"] == []
    assert budget["results"][0]["document_id"] == library.nightingale.pk
    assert "error" in hidden and "No passage" in hidden["error"]
    assert shown["document_id"] == library.nightingale.pk
    assert "12 million euros" in shown["text"]


def test_a_read_only_token_reads_and_asks_but_changes_nothing(
    mcp_url: str, library: World
) -> None:
    token = token_create(user=library.bob, name="bob's assistant", read_only=True)
    before = [
        model.objects.count()
        for model in (Collection, CollectionGrant, Document, Chunk)
    ]
    _names, results = _session(
        mcp_url,
        token.plaintext,
        [
            ("list_collections", {}),
            ("search", {"query": "Zephyr refund window"}),
            ("ask", {"question": "What is the refund window for Zephyr headphones?"}),
            ("get_passage", {"chunk_id": _chunk(library.nightingale)}),
            ("ask", {"question": "What is the Nightingale acquisition budget?"}),
        ],
    )
    listed, found, answered, hidden, budget = results
    assert [c["id"] for c in listed["collections"]] == [library.collection_a.pk]
    assert found["results"][0]["document_id"] == library.zephyr.pk
    assert answered["status"] in {"complete", "not_found"}
    assert library.zephyr.pk in {_doc(p) for p in answered["passages"]}
    assert "error" in hidden
    assert all(_doc(p) != library.nightingale.pk for p in budget["passages"])
    after = [
        model.objects.count()
        for model in (Collection, CollectionGrant, Document, Chunk)
    ]
    assert after == before


def _doc(passage: dict[str, Any]) -> int:
    return Chunk.objects.get(pk=passage["chunk_id"]).document_id
