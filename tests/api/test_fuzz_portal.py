"""Fuzzing what the REST schema does not cover: the portal's forms and query
strings, the server-sent-event endpoints and the OpenAI-compatible API.

Every value is drawn from hostile input (digits that are not ASCII, NUL,
impossible dates, huge numbers, redirects off-site, odd Unicode) mixed with
arbitrary text. Nothing may answer 5xx; the test client raises on a server
error, so an exception in a view fails the test with its traceback.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.services import token_create
from inference.models import Message
from kb.models import Document
from tests.conftest import World

HOSTILE = [
    "²",
    "١٢",
    "۳",
    "９",
    "\x00",
    "a\x00b",
    "2020-13-45",
    "2024-02-30",
    "0000-00-00",
    "-1",
    "0",
    "9" * 40,
    "1e309",
    "javascript:alert(1)",
    "//evil.example/",
    "https://evil.example/",
    "/\\evil.example",
    "\u202e\u200b\ufeff",
    "𝟙𝟚",
    "' OR 1=1 --",
    "<script>alert(1)</script>",
    "x" * 5000,
]
values = st.one_of(st.sampled_from(HOSTILE), st.text(max_size=40))
FUZZ = settings(
    max_examples=30,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


def _no_server_error(response: Any) -> None:
    if getattr(response, "streaming", False):
        b"".join(response.streaming_content)
    assert response.status_code < 500, response.status_code


@pytest.fixture
def alice(world: World, settings: Any, dead_llm_url: str) -> Client:
    # Asking must fail fast rather than wait for a model.
    settings.LLM_BASE_URL = dead_llm_url
    client = Client()
    client.force_login(world.alice)
    return client


@pytest.fixture
def dead_llm_url() -> str:
    return "http://127.0.0.1:9/v1"


def _fuzz(check: Callable[..., None], *strategies: Any) -> None:
    FUZZ(given(*strategies)(check))()


def test_search_query_strings(alice: Client) -> None:
    params = st.fixed_dictionaries(
        {},
        optional=dict.fromkeys(
            ("q", "collection", "document", "type", "after", "before"), values
        ),
    )
    _fuzz(lambda p: _no_server_error(alice.get("/search/", p)), params)
    _fuzz(
        lambda p: _no_server_error(alice.get("/api/v1/search/", {"q": "x", **p})),
        params,
    )


def test_document_page_and_actions(alice: Client, world: World) -> None:
    document: Document = world.document_a
    _fuzz(
        lambda v: _no_server_error(
            alice.get(f"/documents/{document.pk}/", {"chunk": v})
        ),
        values,
    )
    actions = st.sampled_from(["retry", "cancel", "reingest"])
    _fuzz(
        lambda action, v: _no_server_error(
            alice.post(f"/documents/{document.pk}/{action}/", {"next": v})
        ),
        actions,
        values,
    )


# Asking closes its database connection while the model works: it needs
# committed rows, not the test's transaction.
@pytest.mark.django_db(transaction=True)
def test_ask_stream_and_conversation_forms(alice: Client, world: World) -> None:
    conversation = world.conversation_a
    form = st.fixed_dictionaries(
        {"question": values}, optional={"collection": values, "conversation": values}
    )
    _fuzz(lambda f: _no_server_error(alice.post("/ask/stream/", f)), form)
    _fuzz(
        lambda v: _no_server_error(
            alice.post(f"/ask/{conversation.pk}/rename/", {"title": v})
        ),
        values,
    )
    answer = Message.objects.get(pk=world.answer_a.pk)
    _fuzz(
        lambda v: _no_server_error(
            alice.post(
                f"/answers/{answer.pk}/feedback/", {"helpful": "1", "comment": v}
            )
        ),
        values,
    )


def test_collection_forms_and_language(alice: Client, world: World) -> None:
    _fuzz(
        lambda v: _no_server_error(
            alice.post("/collections/", {"name": v, "description": v})
        ),
        values,
    )
    _fuzz(
        lambda v: _no_server_error(
            alice.post("/i18n/setlang/", {"language": v, "next": v})
        ),
        values,
    )
    _fuzz(
        lambda v: _no_server_error(Client().get("/accounts/login/", {"next": v})),
        values,
    )


@pytest.mark.django_db(transaction=True)
def test_openai_compatible_api(world: World, settings: Any) -> None:
    settings.LLM_BASE_URL = "http://127.0.0.1:9/v1"
    token = token_create(user=world.alice, name="fuzzer").plaintext
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    body = st.fixed_dictionaries(
        {
            "model": st.one_of(
                values, values.map(lambda v: f"collection-{v}"), st.just("archivist")
            ),
            "messages": st.lists(
                st.fixed_dictionaries(
                    {
                        "role": st.sampled_from(["user", "assistant", "system", "x"]),
                        "content": st.one_of(
                            values,
                            st.lists(st.fixed_dictionaries({"text": values})),
                            st.integers(),
                            st.none(),
                        ),
                    }
                ),
                max_size=3,
            ),
            "stream": st.booleans(),
        }
    )
    _fuzz(
        lambda b: _no_server_error(
            client.post("/v1/chat/completions", b, content_type="application/json")
        ),
        body,
    )


@pytest.mark.django_db(transaction=True)
def test_the_probes_requests_answer_4xx(world: World, alice: Client) -> None:
    """Each request the black-box probe saw fail with a 500."""
    token = token_create(user=world.alice, name="probe").plaintext
    api = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    document = world.document_a.pk
    conversation = world.conversation_a.pk
    checks = [
        alice.get("/search/", {"q": "x", "collection": "²"}),
        alice.get("/search/", {"q": "x", "document": "²"}),
        alice.get("/search/", {"q": "x", "after": "2020-13-45"}),
        alice.get("/search/", {"q": "a\x00b"}),
        api.get("/api/v1/search/", {"q": "x", "after": "2020-13-45"}),
        alice.get(f"/documents/{document}/", {"chunk": "²"}),
        alice.post("/ask/stream/", {"question": "x", "collection": "²"}),
        alice.post("/ask/stream/", {"question": "x", "conversation": "²"}),
        alice.post("/ask/stream/", {"question": "a\x00b"}),
        alice.post(f"/ask/{conversation}/rename/", {"title": "a\x00b"}),
        alice.post(
            f"/answers/{world.answer_a.pk}/feedback/",
            {"helpful": "1", "comment": "a\x00b"},
        ),
        alice.post(f"/documents/{document}/retry/", {"next": "javascript:alert(1)"}),
        api.post(
            "/v1/chat/completions",
            {"model": "collection-²", "messages": [{"role": "user", "content": "x"}]},
            content_type="application/json",
        ),
        api.post(
            "/v1/chat/completions",
            {"model": "archivist", "messages": [{"role": "user", "content": "a\x00"}]},
            content_type="application/json",
        ),
    ]
    statuses = [response.status_code for response in checks]
    # An id that cannot be one filters to nothing (a page with no results);
    # every other value is refused, and a bad ``next`` falls back to the
    # document itself.
    assert statuses == [
        200, 200, 400, 400, 400, 200, 200, 404, 400, 400, 400, 302, 404, 400
    ]  # fmt: skip


@pytest.mark.parametrize("action", ["retry", "cancel", "reingest"])
@pytest.mark.parametrize(
    "target", ["//evil.example/", "https://evil.example/", "/\\evil.example"]
)
def test_document_actions_never_redirect_off_site(
    alice: Client, world: World, action: str, target: str
) -> None:
    document = world.document_a
    response = alice.post(f"/documents/{document.pk}/{action}/", {"next": target})
    assert response.status_code == 302
    assert response["Location"] == document.get_absolute_url()
    inside = alice.post(
        f"/documents/{document.pk}/{action}/",
        {"next": f"/collections/{document.collection_id}/"},
    )
    assert inside["Location"] == f"/collections/{document.collection_id}/"
