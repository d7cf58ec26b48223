"""Citations: each [n] is checked against the sentence it ends."""

from __future__ import annotations

from inference.citations import (
    citations_for,
    cited_sentences,
    dangling_numbers,
    is_ungrounded,
)
from inference.passages import Passage

BACKUP = "The backup job runs every night at 02:30 and keeps fourteen copies."
ROOM = "服务器机房位于上海市浦东新区张江路 88 号三楼，温度保持在 22 摄氏度。"


def _passages() -> list[Passage]:
    return [
        Passage(1, 11, 5, 1, "ops.txt", 3, "", BACKUP, "/documents/5/?chunk=11"),
        Passage(2, 12, 6, 1, "机房.txt", None, "", ROOM, "/documents/6/?chunk=12"),
    ]


def test_a_citation_whose_passage_holds_the_sentence_is_supported() -> None:
    cited = citations_for(
        "The backup runs every night at 02:30 [1]. 机房位于张江路 88 号[2]。",
        _passages(),
        readable={11, 12},
    )
    assert [(c["n"], c["supported"]) for c in cited] == [(1, True), (2, True)]
    assert cited[0]["url"] == "/documents/5/?chunk=11"


def test_a_citation_to_a_passage_that_does_not_say_it_is_flagged() -> None:
    cited = citations_for(
        "The datacenter is cooled by seawater from Lake Geneva [1].",
        _passages(),
        readable={11, 12},
    )
    assert [(c["n"], c["supported"]) for c in cited] == [(1, False)]


def test_citations_pointing_nowhere_or_at_unreadable_passages_are_dropped() -> None:
    answer = "Backups run nightly at 02:30 [1] and are checked [7]."
    assert citations_for(answer, _passages(), readable=set()) == []
    assert dangling_numbers(answer, _passages()) == [7]


def test_an_answer_without_markers_is_credited_to_the_passage_it_copies() -> None:
    cited = citations_for(
        "It runs every night at 02:30 and keeps fourteen copies.",
        _passages(),
        readable={11, 12},
    )
    assert [c["n"] for c in cited] == [1]


def test_a_marker_after_the_full_stop_belongs_to_its_sentence() -> None:
    assert cited_sentences("Backups run at 02:30. [1] Copies are kept.") == [
        ("Backups run at 02:30.", [1]),
        ("Copies are kept.", []),
    ]


def test_an_answer_from_the_models_own_knowledge_is_recognised() -> None:
    """Beyond the question's words, nothing of it is in the passages."""
    question = "When does the backup job run?"
    invented = (
        "Backup jobs usually run on weekends when the office network is idle "
        "and administrators prefer incremental snapshots [1]."
    )
    grounded = "The backup job runs every night at 02:30 [1]."
    passages = _passages()[:1]
    for answer, expected in ((invented, True), (grounded, False)):
        cited = citations_for(answer, passages, readable={11})
        assert is_ungrounded(answer, question, passages, cited) is expected


def test_a_fact_read_from_a_passage_is_grounded_despite_the_models_padding() -> None:
    """One sentence states the passage; the rest is advice of the model's own."""
    question = "Can Orion speakers be returned?"
    passage = Passage(
        1,
        21,
        7,
        1,
        "orion.txt",
        None,
        "",
        "Orion speakers refund policy\nOrion speakers can be returned within 14 "
        "days of delivery. Opened speakers get store credit instead of a refund.",
        "/documents/7/?chunk=21",
    )
    padded = (  # a small model's answer, word for word
        "No, not all Orion speakers can be returned. The policy is only for the "
        "first 14 days after delivery. If you have more than that, you may need "
        "to consider other options."
    )
    advice = (
        "Yes. Speakers are usually returned to the shop with the original box. "
        "If you have had them for longer, you may need to consider other options."
    )
    assert citations_for(padded, [passage], readable={21}) == []
    assert not is_ungrounded(padded, question, [passage], [])
    assert is_ungrounded(advice, question, [passage], [])


def test_a_chinese_answer_from_english_passages_is_not_judged_by_words() -> None:
    passages = _passages()[:1]
    answer = "备份任务每晚两点半运行，保留十四份副本。"
    assert not is_ungrounded(answer, "备份什么时候运行？", passages, [])
