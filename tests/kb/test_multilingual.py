"""Search across Chinese and English. With the bundled English model a
Chinese question over English documents says that the model does not read
its language instead of returning noise; after a live switch to the
multilingual model (search answering throughout), a Chinese question finds
the English document and an English question the Chinese one, through the
API."""

from __future__ import annotations

import pytest
from django.test import Client

from kb.index import active_index, active_model_name
from kb.models import Chunk
from kb.search import search_chunks
from ops.reembed import reembed
from tests.conftest import World, reembed_while_searching
from tests.ingest.conftest import upload_bytes, wait_final

pytestmark = pytest.mark.slow

MULTILINGUAL = "google/embeddinggemma-300m"
DOCUMENTS = {
    "glaciers.txt": "Alpine glaciers have lost a third of their ice since 1980 "
    "because summers are warmer; meltwater lakes now form every July.",
    "printer.txt": "To install the office printer, download the driver from "
    "the intranet before you connect the device with a USB cable.",
    "bees.txt": "Honey bees pollinate the apple orchards in early April; the "
    "farm rents forty hives from a beekeeper each spring.",
    "leave-zh.txt": "员工每年享有十五天带薪年假，未休完的假期最多可以顺延五天到下一年。",
    "reimbursement-zh.txt": "出差费用必须在三十天内报销，并附上发票和登机牌。",
    "canteen-zh.txt": "公司食堂每天中午十一点半开放，提供素食和清真餐。",
}
# A Chinese question about an English document, and the other way round.
CHINESE_QUESTION = "阿尔卑斯山的冰川为什么在融化？"
ENGLISH_QUESTION = "How many days of paid annual leave do employees get?"


def _api_search(client: Client, query: str) -> dict[str, object]:
    response = client.get("/api/v1/search/", {"q": query, "limit": "3"})
    assert response.status_code == 200
    body: dict[str, object] = response.json()
    return body


def _titles(body: dict[str, object]) -> list[str]:
    results = body["results"]
    assert isinstance(results, list)
    return [str(hit["document_title"]) for hit in results]


def test_search_across_chinese_and_english(ingest_world: World) -> None:
    world = ingest_world
    uploads = [
        upload_bytes(world, world.collection_a, name, text.encode()).document
        for name, text in DOCUMENTS.items()
    ]
    done = wait_final([d.pk for d in uploads], 180)
    assert all(d.status == "ready" for d in done.values())
    client = Client()
    client.force_login(world.bob)

    # The English model: the Chinese question is not matched by meaning.
    english_model = active_model_name()
    body = _api_search(client, CHINESE_QUESTION)
    assert body["language_covered"] is False
    assert "does not read this language" in str(body["notice"])
    assert "glaciers.txt" not in _titles(body)

    # The switch, with searches running all along.
    switch = reembed_while_searching(
        MULTILINGUAL, lambda: search_chunks(user=world.bob, query=ENGLISH_QUESTION)
    )
    index, results, errors = switch.index, switch.results, switch.errors
    try:
        assert not errors, errors
        assert index.model_name == MULTILINGUAL and index.dimensions == 768
        assert {r.embedding_model for r in results} == {english_model, MULTILINGUAL}
        assert all(r.hits for r in results)

        body = _api_search(client, CHINESE_QUESTION)
        assert body["language_covered"] is True and body["notice"] == ""
        assert _titles(body)[0] == "glaciers.txt"
        body = _api_search(client, ENGLISH_QUESTION)
        assert _titles(body)[0] == "leave-zh.txt"
        # Matryoshka: the model cut to 256 dimensions still reads both ways.
        reembed(model_name=f"{MULTILINGUAL}@256")
        assert active_index().dimensions == 256
        assert _titles(_api_search(client, CHINESE_QUESTION))[0] == "glaciers.txt"
        assert _titles(_api_search(client, ENGLISH_QUESTION))[0] == "leave-zh.txt"
    finally:
        # The installation ends as it began, for the tests after this one.
        reembed(model_name=english_model)
    assert active_index().dimensions == 384
    assert set(Chunk.objects.values_list("embedding_model", flat=True)) == {
        english_model
    }
