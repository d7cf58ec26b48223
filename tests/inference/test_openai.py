"""The OpenAI-compatible endpoint, driven by the official ``openai`` client
against a live server, with the real LLM and a real worker."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from accounts.services import token_create
from inference.cache import AnswerCache
from tests.conftest import World
from tests.ingest.conftest import upload_bytes, wait_final

POLICY = (
    "Travel policy\n\nTrain travel is second class for trips under four hours. "
    "Flights need approval from a director."
)
SECRET = "Board minutes\n\nThe Falcon merger closes in June; the price is confidential."


@pytest.fixture
def client_for(ingest_world: World, live_server: Any, settings: Any):
    settings.ANSWER_MAX_TOKENS = 48
    AnswerCache().purge()
    world = ingest_world
    outcomes = [
        upload_bytes(world, world.collection_a, "travel.txt", POLICY.encode()),
        upload_bytes(world, world.collection_b, "minutes.txt", SECRET.encode()),
    ]
    documents = wait_final([o.document.pk for o in outcomes], timeout=180)
    assert all(d.status == "ready" for d in documents.values())

    def make(user: Any, **token_options: Any) -> openai.OpenAI:
        secret = token_create(
            user=user, name="openai client", **token_options
        ).plaintext
        return openai.OpenAI(
            api_key=secret, base_url=f"{live_server.url}/v1", max_retries=0
        )

    return make


def test_models_are_the_readable_collections(client_for, ingest_world: World) -> None:
    world = ingest_world
    alice = {m.id for m in client_for(world.alice).models.list()}
    assert alice == {
        "archivist",
        f"collection-{world.collection_a.pk}",
        f"collection-{world.collection_b.pk}",
    }
    bob = {m.id for m in client_for(world.bob).models.list()}
    assert bob == {"archivist", f"collection-{world.collection_a.pk}"}


@pytest.mark.llm
def test_chat_completion_answers_with_citations(
    client_for, ingest_world: World, default_llm_url: str, settings: Any
) -> None:
    """Citations are an answer's quality: the default model answers."""
    settings.LLM_BASE_URL = default_llm_url
    world = ingest_world
    client = client_for(world.bob)
    completion = client.chat.completions.create(
        model=f"collection-{world.collection_a.pk}",
        messages=[
            {"role": "user", "content": "Which class is train travel for short trips?"}
        ],
    )
    content = completion.choices[0].message.content or ""
    assert content.strip()
    citations = completion.model_extra["citations"]
    assert citations and citations[0]["title"] == "travel.txt", content
    assert "Sources:" in content and "travel.txt" in content

    stream = client.chat.completions.create(
        model="archivist",
        messages=[
            {"role": "user", "content": "Which class is train travel for short trips?"},
            {"role": "assistant", "content": content},
            {"role": "user", "content": "Who approves flights?"},
        ],
        stream=True,
    )
    pieces = [chunk.choices[0].delta.content or "" for chunk in stream]
    assert "".join(pieces).strip()


def test_a_collection_you_cannot_read_is_not_a_model(
    client_for, ingest_world: World
) -> None:
    world = ingest_world
    client = client_for(world.bob)
    with pytest.raises(openai.NotFoundError) as failure:
        client.chat.completions.create(
            model=f"collection-{world.collection_b.pk}",
            messages=[
                {"role": "user", "content": "When does the Falcon merger close?"}
            ],
        )
    assert failure.value.code == "model_not_found"
    # All of bob's collections: the minutes in B never come back.
    completion = client.chat.completions.create(
        model="archivist",
        messages=[{"role": "user", "content": "When does the Falcon merger close?"}],
    )
    assert "minutes.txt" not in (completion.choices[0].message.content or "")
    assert all(c["title"] != "minutes.txt" for c in completion.model_extra["citations"])
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(
            api_key="ak_wrong", base_url=client.base_url, max_retries=0
        ).models.list()
