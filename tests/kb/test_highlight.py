"""Query words marked in a passage: where, which, and never inside markup."""

from __future__ import annotations

import html
import random
import re

from kb.search import highlight


def _alternation(text: str, terms: tuple[str, ...]) -> str:
    """What marks mean: one case-insensitive alternation of the words,
    longest first, run over the escaped text (the search's former way)."""
    escaped = html.escape(text)
    words = sorted({term for term in terms if len(term) > 1}, key=len, reverse=True)
    if not words:
        return escaped
    pattern = re.compile("|".join(re.escape(word) for word in words), re.IGNORECASE)
    return pattern.sub(lambda match: f"<mark>{match.group(0)}</mark>", escaped)


def test_marks_are_those_of_a_longest_first_alternation() -> None:
    rng = random.Random(5)  # noqa: S311 - reproducible cases, not secrets
    alphabet = "abcAB 细胞"
    for _ in range(2000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        terms = tuple(
            "".join(rng.choice("abc细胞") for _ in range(rng.randint(1, 4)))
            for _ in range(rng.randint(0, 4))
        )
        assert highlight(text, terms) == _alternation(text, terms), (text, terms)


def test_longest_word_wins_and_case_is_kept() -> None:
    assert (
        highlight("Cell cells CELLULAR", ("cell", "cells"))
        == "<mark>Cell</mark> <mark>cells</mark> <mark>CELL</mark>ULAR"
    )
    assert highlight("细胞凋亡与细胞", ("细胞", "凋亡")) == (
        "<mark>细胞</mark><mark>凋亡</mark>与<mark>细胞</mark>"
    )


def test_single_letters_and_no_words_mark_nothing() -> None:
    assert highlight("a <b> c", ("a", "c")) == "a &lt;b&gt; c"
    assert highlight("a <b> c", ()) == "a &lt;b&gt; c"


def test_words_never_land_inside_an_escaped_character() -> None:
    """A query word that is also an entity's name ("lt", "amp") marks the
    text's own letters, not the markup the escaping wrote."""
    assert highlight("x < y & alt", ("lt", "amp")) == "x &lt; y &amp; a<mark>lt</mark>"
    assert highlight("<script>", ("script",)) == "&lt;<mark>script</mark>&gt;"


def test_a_passage_whose_lower_case_is_longer_is_escaped_unmarked() -> None:
    # "İ".lower() is two characters: positions in the lower case would not
    # be positions in the passage.
    assert highlight("İstanbul <x>", ("stanbul",)) == "İstanbul &lt;x&gt;"
