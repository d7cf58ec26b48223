"""Chinese names jieba does not know: its HMM joins such a name to the
character after it in a question ("白岳峰现" for 白岳峰 + 现), a word no
passage holds; the search cuts it as the searched collections hold it."""

from __future__ import annotations

import pytest

from kb.search import SearchFilters, search_chunks
from kb.search.vocabulary import indexed_words
from kb.text import query_word_candidates, segment, segment_query
from tests.conftest import World
from tests.kb.test_search import _insert_synthetic_chunks

PLAYER = "白岳峰，朝鲜族，中国足球运动员，司职中场，现效力于中超球队天津泰达。"
OTHERS = [
    "李明效力于北京国安，球队在2009年夺得联赛冠军，他效力球队十年。",
    "哪支球队能效力于城市？球队与球员的效力关系由合同决定。",
    "王强曾效力于上海申花与山东鲁能两支球队。",
]
QUESTION = "白岳峰现效力于哪支球队？"


@pytest.mark.parametrize(
    "question",
    ["白岳峰现效力于哪支球队？", "员工每年有几天带薪年假？", "What is 天津泰达?"],
)
def test_a_question_is_cut_as_the_index_cuts_text_when_no_name_is_found(
    question: str,
) -> None:
    assert segment_query(question, frozenset()) == segment(question)
    assert segment_query(question, frozenset({"无关"})) == segment(question)


def test_a_name_joined_to_the_next_character_is_cut_where_the_index_holds_it() -> None:
    assert "白岳峰现" in segment(QUESTION).split()
    assert "白岳峰" in query_word_candidates(QUESTION)
    words = segment_query(QUESTION, frozenset({"白岳峰"})).split()
    assert words[:3] == ["白岳峰", "现", "效力"]
    # A name jieba splits into single characters is joined again.
    assert segment_query("额亦都是哪国人？", frozenset({"额亦都"})).split()[:2] == [
        "额亦都",
        "是",
    ]


def test_a_question_naming_an_unknown_name_finds_its_passage(world: World) -> None:
    _insert_synthetic_chunks(world.collection_a, 3, seed=31, texts=OTHERS)
    player = _insert_synthetic_chunks(world.collection_a, 1, seed=32, texts=[PLAYER])
    result = search_chunks(user=world.alice, query=QUESTION, limit=3, mode="lexical")
    assert result.hits[0].document_id == player.pk
    assert "白岳峰" in result.hits[0].terms


def test_only_the_searched_collections_words_cut_a_question(world: World) -> None:
    """bob reads A, not B: a name only B holds leaves his question as it was."""
    _insert_synthetic_chunks(world.collection_a, 3, seed=34, texts=OTHERS)
    _insert_synthetic_chunks(world.collection_b, 1, seed=33, texts=[PLAYER])
    candidates = query_word_candidates(QUESTION)
    assert "白岳峰" in indexed_words(
        user=world.alice, token=None, filters=SearchFilters(), candidates=candidates
    )
    assert "白岳峰" not in indexed_words(
        user=world.bob, token=None, filters=SearchFilters(), candidates=candidates
    )
    # Nor does a collection filter that leaves B out.
    assert "白岳峰" not in indexed_words(
        user=world.alice,
        token=None,
        filters=SearchFilters(collection_ids=(world.collection_a.pk,)),
        candidates=candidates,
    )
    result = search_chunks(user=world.bob, query=QUESTION, limit=3, mode="lexical")
    assert result.hits
    assert all(hit.collection_id == world.collection_a.pk for hit in result.hits)
    assert "白岳峰现" in result.hits[0].terms
    assert "白岳峰" not in result.hits[0].terms
