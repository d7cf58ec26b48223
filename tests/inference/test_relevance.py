"""The relevance gate in front of the model: which passages found for a
question are worth answering from, with the reader (EmbeddingGemma) judging
what the index's model and the words leave undecided."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest

from inference import relevance
from inference.relevance import (
    MIN_LEXICAL_COVERAGE_TO_READ,
    READ_CJK_CHARS,
    READ_PASSAGES,
    min_similarity,
    reader,
    reading_window,
    relevant_hits,
)
from kb.search import SearchHit, SearchResult

pytestmark = pytest.mark.slow

READER = "google/embeddinggemma-300m"
MINILM = "sentence-transformers/all-MiniLM-L6-v2"
MACHINE_ROOM = (
    "机房管理规定\n\n公司的服务器机房位于上海市浦东新区张江路 88 号三楼。机房温度保持"
    "在 22 摄氏度，湿度保持在百分之四十五。进入机房需要刷工卡并在值班室登记。"
)
LIBRARY = (
    "市图书馆简介\n\n市图书馆建于 1987 年，2015 年扩建后共有藏书 120 万册。周一闭馆，"
    "其余每天 9:00 至 21:00 开放。"
)
BACKUPS = (
    "Archivist maintenance handbook\n\nThe nightly backup job starts at 02:30 and "
    "keeps fourteen daily copies on the storage server in rack B. Restores are "
    "tested on the first Monday of every month."
)


def _hit(
    text: str, *, coverage: float | None, similarity: float | None = None, n: int = 1
) -> SearchHit:
    return SearchHit(
        chunk_id=n,
        document_id=n,
        document_title=f"doc {n}",
        collection_id=1,
        collection_name="handbooks",
        page=None,
        section_title="",
        text=text,
        score=1.0 / n,
        dense_rank=None if similarity is None else n,
        lexical_rank=None if coverage is None else n,
        similarity=similarity,
        lexical_coverage=coverage,
    )


def _lexical(*hits: SearchHit) -> SearchResult:
    """A search whose question the index's model does not read."""
    return SearchResult(list(hits), False, "lexical", {}, None, language_covered=False)


def _dense(*hits: SearchHit, model: str = MINILM) -> SearchResult:
    return SearchResult(list(hits), True, "exact", {}, model)


@pytest.fixture
def with_reader(settings: Any) -> None:
    settings.ANSWER_READER_MODEL = READER
    assert reader(wait=True) is not None


def test_the_reader_keeps_a_passage_that_answers_and_drops_one_that_only_shares_words(
    with_reader: None,
) -> None:
    # Both questions share about a third of their words with the passage:
    # too few to pass on the words, enough to be worth reading.
    timings: dict[str, float] = {}
    answered = relevant_hits(
        "进入机房需要做什么？", _lexical(_hit(MACHINE_ROOM, coverage=0.3)), timings
    )
    assert [hit.chunk_id for hit in answered] == [1]
    assert timings["reader_ms"] > 0

    off_topic = relevant_hits(
        "浦东新区有多少所大学？", _lexical(_hit(MACHINE_ROOM, coverage=0.3)), {}
    )
    assert off_topic == []


def test_the_reader_drops_what_the_old_lower_bar_let_through(
    with_reader: None,
) -> None:
    # 0.45 of the words passed without a reader; the meaning is elsewhere.
    hits = relevant_hits(
        "上海市的人口有多少？", _lexical(_hit(MACHINE_ROOM, coverage=0.45)), {}
    )
    assert hits == []


def test_a_passage_with_most_of_the_words_passes_without_reading(
    with_reader: None,
) -> None:
    timings: dict[str, float] = {}
    hits = relevant_hits(
        "上海市的人口有多少？", _lexical(_hit(MACHINE_ROOM, coverage=0.7)), timings
    )
    assert [hit.chunk_id for hit in hits] == [1]
    assert "reader_ms" not in timings


def test_only_the_first_passages_with_some_of_the_words_are_read(
    with_reader: None,
) -> None:
    timings: dict[str, float] = {}
    low = MIN_LEXICAL_COVERAGE_TO_READ / 2
    first = [
        _hit(MACHINE_ROOM if n % 2 else BACKUPS, coverage=low, n=n)
        for n in range(1, READ_PASSAGES + 1)
    ]
    hits = relevant_hits(
        "进入机房需要做什么？",
        _lexical(*first, _hit(MACHINE_ROOM, coverage=0.3, n=READ_PASSAGES + 1)),
        timings,
    )
    # The last would answer, but only the first READ_PASSAGES are ever read,
    # and those hold too few of the question's words to be read at all.
    assert hits == []
    assert "reader_ms" not in timings


def test_the_answer_may_be_in_a_later_passage_read(with_reader: None) -> None:
    # The first passages found share words with the question but not its
    # meaning; the last one read answers it, and only it is kept.
    unrelated = [
        _hit(BACKUPS, coverage=MIN_LEXICAL_COVERAGE_TO_READ, n=n)
        for n in range(1, READ_PASSAGES)
    ]
    hits = relevant_hits(
        "进入机房需要做什么？",
        _lexical(
            *unrelated,
            _hit(MACHINE_ROOM, coverage=MIN_LEXICAL_COVERAGE_TO_READ, n=READ_PASSAGES),
        ),
        {},
    )
    assert [hit.chunk_id for hit in hits] == [READ_PASSAGES]


def test_a_passage_the_reader_finds_close_goes_before_those_sharing_words(
    with_reader: None,
) -> None:
    # The first passage found holds enough of the question's words to be
    # kept, but is about something else; the second answers, and the model
    # reads it first (the sources' budget often holds only one).
    hits = relevant_hits(
        "进入机房需要做什么？",
        _lexical(
            _hit(LIBRARY, coverage=0.45, n=1), _hit(MACHINE_ROOM, coverage=0.3, n=2)
        ),
        {},
    )
    assert [hit.chunk_id for hit in hits] == [2, 1]


def test_a_later_passage_is_read_only_when_none_of_the_first_is_close(
    with_reader: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    read: list[int] = []
    real_read = relevance._read

    def counting_read(embedder: Any, question: Any, hits: list[SearchHit]) -> Any:
        read.extend(hit.chunk_id for hit in hits)
        return real_read(embedder, question, hits)

    monkeypatch.setattr(relevance, "_read", counting_read)
    bar = MIN_LEXICAL_COVERAGE_TO_READ
    passages = [_hit(MACHINE_ROOM, coverage=bar, n=1)] + [
        _hit(BACKUPS, coverage=bar, n=n) for n in range(2, READ_PASSAGES + 1)
    ]
    hits = relevant_hits("进入机房需要做什么？", _lexical(*passages), {})
    assert [hit.chunk_id for hit in hits] == [1]
    assert read == list(range(1, relevance.READ_FIRST + 1))


def test_an_english_passage_the_index_model_finds_too_far_is_read_again(
    with_reader: None,
) -> None:
    below = min_similarity(MINILM) - 0.1
    kept = relevant_hits(
        "How many daily copies are kept?",
        _dense(_hit(BACKUPS, coverage=0.3, similarity=below)),
        {},
    )
    assert [hit.chunk_id for hit in kept] == [1]
    # Related words, but the passage does not say when the server was bought.
    unanswerable = relevant_hits(
        "When was the storage server bought?",
        _dense(_hit(BACKUPS, coverage=0.3, similarity=below)),
        {},
    )
    assert unanswerable == []


def test_a_passage_read_before_is_not_embedded_again(
    with_reader: None, monkeypatch: Any
) -> None:
    loaded = reader(wait=True)
    assert loaded is not None
    embedded: list[list[str]] = []
    encode = loaded.encode

    def counting(texts: list[str]) -> Any:
        embedded.append(list(texts))
        return encode(texts)

    monkeypatch.setattr(loaded, "encode", counting)
    monkeypatch.setattr(relevance, "_read_vectors", relevance._ReadVectors(8))
    first = relevant_hits(
        "进入机房需要做什么？", _lexical(_hit(MACHINE_ROOM, coverage=0.3)), {}
    )
    # Another question about the same passage: its vector is kept, and the
    # decision is the one reading it afresh gives.
    second = relevant_hits(
        "浦东新区有多少所大学？", _lexical(_hit(MACHINE_ROOM, coverage=0.3)), {}
    )
    assert [hit.chunk_id for hit in first] == [1]
    assert second == []
    assert embedded == [[MACHINE_ROOM]]


def test_the_reader_keeps_only_the_latest_passage_vectors(with_reader: None) -> None:
    loaded = reader(wait=True)
    assert loaded is not None
    kept = relevance._ReadVectors(1)
    first = kept.encode(loaded, [MACHINE_ROOM])
    kept.encode(loaded, [BACKUPS])
    assert list(kept._vectors) == [(loaded.model_name, BACKUPS)]
    again = kept.encode(loaded, [MACHINE_ROOM, MACHINE_ROOM])
    assert again.shape == (2, first.shape[1])
    assert float(again[0] @ first[0]) >= 0.999
    assert list(kept._vectors) == [(loaded.model_name, MACHINE_ROOM)]


def test_the_reader_reads_the_part_of_a_long_passage_holding_the_question_words() -> (
    None
):
    filler = "本段讲述公司的历史沿革与组织结构。" * 40
    passage = filler + MACHINE_ROOM + filler
    window = reading_window(passage, ("机房", "刷工卡", "登记"))
    assert len(window) == READ_CJK_CHARS
    assert "进入机房需要刷工卡并在值班室登记" in window
    # Alphabetic text is read three times as wide; short passages whole.
    english = "Unrelated history of the company. " * 60 + BACKUPS
    wide = reading_window(english, ("backup", "copies"))
    assert len(wide) == 3 * READ_CJK_CHARS and "fourteen daily copies" in wide
    assert reading_window(BACKUPS, ("backup",)) == BACKUPS
    # No word found: the passage's beginning.
    assert reading_window(passage, ("潜水艇",)) == passage[:READ_CJK_CHARS]


def test_each_model_has_its_own_similarity_bar() -> None:
    assert min_similarity(READER) < min_similarity(MINILM)
    assert min_similarity(f"{READER}@256") == min_similarity(READER)
    assert min_similarity("some/other-model") == relevance.DEFAULT_MIN_SIMILARITY


def test_without_a_reader_a_lower_share_of_the_words_must_do(settings: Any) -> None:
    settings.ANSWER_READER_MODEL = relevance.READER_OFF
    assert reader(wait=True) is None
    question = "上海市的人口有多少？"
    assert relevant_hits(question, _lexical(_hit(MACHINE_ROOM, coverage=0.45)), {})
    assert not relevant_hits(question, _lexical(_hit(MACHINE_ROOM, coverage=0.3)), {})
    # A language the index's model reads keeps its own bars.
    dense = _dense(_hit(BACKUPS, coverage=0.45, similarity=0.3))
    assert not relevant_hits("How many daily copies are kept?", dense, {})


def test_a_reader_that_cannot_load_is_logged_once_and_answers_go_on(
    settings: Any, tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings.ANSWER_READER_MODEL = str(tmp_path / "no-such-model")
    with caplog.at_level(logging.WARNING, logger="inference.relevance"):
        assert reader(wait=True) is None
        hits = relevant_hits(
            "上海市的人口有多少？", _lexical(_hit(MACHINE_ROOM, coverage=0.45)), {}
        )
        assert reader(wait=True) is None
    assert [hit.chunk_id for hit in hits] == [1]
    warnings = [r for r in caplog.records if "answer reader" in r.getMessage()]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert "ANSWER_READER_MODEL" in warnings[0].getMessage()


def test_a_question_does_not_wait_for_the_reader_to_load(settings: Any) -> None:
    # A reader not loaded yet in this process (the small English model
    # stands in for it): the first question is judged by its words while
    # the reader loads in the background.
    settings.ANSWER_READER_MODEL = MINILM
    try:
        hits = relevant_hits(
            "上海市的人口有多少？", _lexical(_hit(MACHINE_ROOM, coverage=0.45)), {}
        )
        assert [hit.chunk_id for hit in hits] == [1]
    finally:
        loaded = reader(wait=True)
    assert loaded is not None and loaded.model_name == MINILM


def test_the_web_process_starts_loading_the_reader_before_the_first_question(
    settings: Any, tmp_path: Any, db: None
) -> None:
    name = str(tmp_path / "reader-to-warm")
    settings.ANSWER_READER_MODEL = name
    relevance.warm_reader()
    deadline = time.monotonic() + 60
    while name not in relevance._loads and time.monotonic() < deadline:
        time.sleep(0.05)
    assert relevance._loads[name].done.wait(60)
    assert relevance.reader_status().startswith(f"{name} (not loaded: ")


def test_no_reader_is_warmed_when_it_is_off(settings: Any) -> None:
    settings.ANSWER_READER_MODEL = relevance.READER_OFF
    before = dict(relevance._loads)
    relevance.warm_reader()
    assert relevance._loads == before
    assert relevance.reader_status() == relevance.READER_OFF


def test_the_reader_does_not_load_where_memory_is_short(
    settings: Any, tmp_path: Any, caplog: pytest.LogCaptureFixture, monkeypatch: Any
) -> None:
    # A name no other test loads; the machine's free memory set just short.
    settings.ANSWER_READER_MODEL = str(tmp_path / "reader-without-memory")
    monkeypatch.setattr(relevance, "READER_MIN_AVAILABLE_BYTES", 1 << 62)
    with caplog.at_level(logging.WARNING, logger="inference.relevance"):
        assert reader(wait=True) is None
    message = " ".join(r.getMessage() for r in caplog.records)
    assert "of memory is free" in message and "WEB_WORKERS" in message
    assert "of memory is free" in relevance.reader_status()
    hits = relevant_hits(
        "上海市的人口有多少？", _lexical(_hit(MACHINE_ROOM, coverage=0.45)), {}
    )
    assert [hit.chunk_id for hit in hits] == [1]
