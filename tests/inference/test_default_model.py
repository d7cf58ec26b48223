"""Answers from the default model, end to end: a real worker ingests an
English and a Chinese document, and Qwen2.5-Coder-1.5B-Instruct (assembled
from its registry parts and verified) answers through the real ask path."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from django.core.management import call_command

from inference.cache import AnswerCache
from inference.evaluation.metrics import contains_answer
from inference.llm import LLMClient
from inference.relevance import reader
from inference.services import ask, collect
from tests.conftest import World
from tests.ingest.conftest import upload_bytes, wait_final

MAINTENANCE = (
    "Archivist maintenance handbook\n\n"
    "The nightly backup job starts at 02:30 and keeps fourteen daily copies on "
    "the storage server in rack B. Restores are tested on the first Monday of "
    "every month.\n\n"
    "The web servers are patched every Tuesday after 18:00. The on-call engineer "
    "approves each patch window."
)
MACHINE_ROOM = (
    "机房管理规定\n\n"
    "公司的服务器机房位于上海市浦东新区张江路 88 号三楼。机房温度保持在 22 摄氏度，"
    "湿度保持在百分之四十五。进入机房需要刷工卡并在值班室登记。"
)

pytestmark = [pytest.mark.llm, pytest.mark.slow]


@pytest.fixture
def handbook(ingest_world: World, default_llm_url: str, settings: Any) -> World:
    settings.LLM_BASE_URL = default_llm_url
    # As installed: the answer reader judges what the words leave undecided.
    settings.ANSWER_READER_MODEL = "google/embeddinggemma-300m"
    assert reader(wait=True) is not None
    AnswerCache().purge()
    world = ingest_world
    outcomes = [
        upload_bytes(
            world, world.collection_a, "maintenance.txt", MAINTENANCE.encode()
        ),
        upload_bytes(world, world.collection_a, "机房.txt", MACHINE_ROOM.encode()),
    ]
    ids = [o.document.pk for o in outcomes]
    documents = wait_final(ids, timeout=240)
    assert all(d.status == "ready" for d in documents.values()), documents
    world.maintenance, world.machine_room = (documents[i] for i in ids)
    return world


def _ask(world: World, question: str, default_llm_url: str) -> dict[str, Any]:
    return collect(
        ask(
            user=world.bob,
            question=question,
            llm=LLMClient(base_url=default_llm_url),
            use_cache=False,
        )
    )


def test_english_and_chinese_questions_are_answered_with_the_right_citation(
    handbook: World, default_llm_url: str
) -> None:
    english = _ask(handbook, "When does the nightly backup job start?", default_llm_url)
    assert english["status"] == "complete", english
    assert contains_answer(english["answer"], ["02:30"]), english["answer"]
    assert [c["document_id"] for c in english["citations"]] == [handbook.maintenance.pk]
    assert english["citations"][0]["supported"]

    chinese = _ask(handbook, "公司的服务器机房位于哪里？", default_llm_url)
    assert chinese["status"] == "complete", chinese
    assert contains_answer(chinese["answer"], ["张江路 88 号"]), chinese["answer"]
    assert [c["document_id"] for c in chinese["citations"]] == [
        handbook.machine_room.pk
    ]


def test_off_topic_and_related_but_unanswerable_questions_are_declined(
    handbook: World, default_llm_url: str
) -> None:
    off_topic = _ask(handbook, "What is the capital of France?", default_llm_url)
    assert off_topic["status"] == "not_found", off_topic
    assert off_topic["answer"].startswith("The knowledge base does not contain")

    # Related: the backup job's passage is found, but it does not say this.
    related = _ask(
        handbook, "How many gigabytes does each nightly backup copy take?",
        default_llm_url,
    )  # fmt: skip
    assert related["status"] == "not_found", related
    assert related["citations"] == []

    chinese = _ask(handbook, "机房的年度电费预算是多少？", default_llm_url)
    assert chinese["status"] == "not_found", chinese
    assert chinese["answer"].startswith("知识库中没有")


def test_a_starter_set_is_drafted_from_the_collection(
    handbook: World, default_llm_url: str, tmp_path: Any
) -> None:
    """Each drafted question is marked synthetic, names its passage's
    document, and has an answer copied from that passage."""
    output = tmp_path / "starter.jsonl"
    call_command(
        "evaluate", draft=output, count=2, user="bob",
        collection=["Collection A"], stdout=io.StringIO(), stderr=io.StringIO(),
    )  # fmt: skip
    rows = [json.loads(line) for line in output.read_text().splitlines()]
    assert 1 <= len(rows) <= 2
    texts = {"maintenance.txt": MAINTENANCE, "机房.txt": MACHINE_ROOM}
    for row in rows:
        assert row["synthetic"] is True and row["question"].strip()
        [document] = row["documents"]
        assert contains_answer(texts[document], row["answers"])
