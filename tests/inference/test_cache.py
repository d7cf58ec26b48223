"""The answer cache's keys and its guard against near-miss paraphrases."""

from __future__ import annotations

import numpy as np
import pytest

from inference.cache import AnswerCache, CachedAnswer, normalise, scope_key, signature
from kb.embedding import embedder_for

MODEL = "sentence-transformers/all-MiniLM-L6-v2"


def test_scope_changes_with_any_collection_or_version() -> None:
    base = scope_key([(1, 3), (2, 7)], embedding_model=MODEL)
    assert (
        scope_key([(2, 7), (1, 3)], embedding_model=MODEL) == base
    )  # order does not matter
    assert scope_key([(1, 3)], embedding_model=MODEL) != base  # one collection fewer
    assert (
        scope_key([(1, 4), (2, 7)], embedding_model=MODEL) != base
    )  # a collection changed
    assert scope_key([], embedding_model=MODEL) != base
    # Another embedding model (after manage.py reembed): another scope.
    assert scope_key([(1, 3), (2, 7)], embedding_model="other-model") != base


def test_normalise_ignores_case_spacing_and_trailing_punctuation() -> None:
    assert normalise("  What is  the Refund window? ") == "what is the refund window"
    assert normalise("退货期限是多久？") == "退货期限是多久"


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("What was revenue in 2023?", "What was revenue in 2024?"),
        (
            "Which products are covered by the warranty?",
            "Which products are not covered by the warranty?",
        ),
        (
            "What is the refund window for Zephyr headphones?",
            "What is the refund window for Orion headphones?",
        ),
        (
            "How do I reset the password for VPN-2?",
            "How do I reset the password for VPN-3?",
        ),
        ("张三的年假有几天？", "李四的年假有几天？"),
    ],
)
def test_near_misses_have_different_signatures(first: str, second: str) -> None:
    assert not signature(first).matches(signature(second))


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("How do I reset my password?", "How can I reset my password?"),
        (
            "What is the refund window for Zephyr headphones?",
            "What's the refund window for the Zephyr headphones?",
        ),
        ("When was the budget approved?", "When did they approve the budget?"),
    ],
)
def test_true_paraphrases_share_a_signature(first: str, second: str) -> None:
    assert signature(first).matches(signature(second))


def test_semantic_tier_serves_paraphrases_but_not_near_misses(db: None) -> None:
    cache = AnswerCache()
    cache.purge()
    scope = scope_key([(99, 1)], embedding_model=MODEL)
    question = "What is the refund window for Zephyr headphones?"
    embedder = embedder_for()
    cache.put(
        scope,
        question,
        embedder.encode_query(question),
        CachedAnswer("45 days [1].", [], [], question),
    )

    def lookup(text: str) -> str:
        hit = cache.get(scope, text, embedder.encode_query(text))
        return hit.tier if hit else "miss"

    assert lookup(question) == "exact"
    assert lookup("What's the refund window for the Zephyr headphones?") == "semantic"
    assert lookup("What is the refund window for Orion headphones?") == "miss"
    assert lookup("What is the warranty period for Zephyr headphones?") == "miss"
    # Another scope never sees it.
    assert (
        cache.get(scope_key([(99, 2)], embedding_model=MODEL), question, np.zeros(384))
        is None
    )
    stats = cache.stats()
    assert stats["exact"] == 1 and stats["semantic"] == 1 and stats["miss"] >= 3
    assert cache.purge() > 0
    assert cache.get(scope, question, None) is None
