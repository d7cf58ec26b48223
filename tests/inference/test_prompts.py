"""The answer prompt's worked examples: fixed, so the LLM server keeps them
in its cached prefix, and held to the same rules as the model's answers; and
the language the answer is asked in."""

from __future__ import annotations

import re
from typing import Any

import pytest

from inference import budget, prompts
from inference.citations import citations_for
from inference.declines import is_decline
from inference.passages import Passage

SOURCE_BODY = re.compile(r"<source [^>]*>\n(.*?)\n</source>", re.DOTALL)


def test_everything_before_the_question_is_the_same_for_every_question() -> None:
    source = prompts.SourceText(1, "a.txt", None, "", "Backups start at 02:30.")
    english = prompts.answer_messages("When do backups start?", [source], "en")
    chinese = prompts.answer_messages("备份几点开始？", [], "zh")
    assert english[:-1] == chinese[:-1]
    assert english[0] == {"role": "system", "content": prompts.ANSWER_SYSTEM}
    assert "Question: When do backups start?" in english[-1]["content"]
    assert "Backups start at 02:30." in english[-1]["content"]


def test_the_examples_decline_in_both_languages_and_answer_in_both() -> None:
    declined = {
        prompts.question_language(question)
        for _source, question, reply in prompts.ANSWER_EXAMPLES
        if is_decline(reply)
    }
    answered = {
        prompts.question_language(question)
        for _source, question, reply in prompts.ANSWER_EXAMPLES
        if not is_decline(reply)
    }
    assert declined == answered == {"en", "zh"}


def test_each_example_answer_is_supported_by_the_source_it_cites() -> None:
    """What the model is shown must pass the checks its own answers face."""
    for fenced, _question, reply in prompts.ANSWER_EXAMPLES:
        if is_decline(reply):
            continue
        [body] = SOURCE_BODY.findall(fenced)
        passage = Passage(1, 7, 3, 2, "example", None, "", body, url="")
        [citation] = citations_for(reply, [passage], readable={7})
        assert citation["n"] == 1 and citation["supported"], reply


def test_the_examples_go_in_only_where_the_sources_keep_their_budget(
    settings: Any,
) -> None:
    settings.ANSWER_CONTEXT_TOKENS = 450
    settings.ANSWER_MAX_TOKENS = 512
    question = "When do backups start?"
    source = prompts.SourceText(1, "a.txt", None, "", "Backups start at 02:30.")

    settings.LLM_MAX_CONTEXT = 8192
    roomy = budget.answer_prompt(question, [source], "en")
    assert len(roomy) == 2 + len(prompts.ANSWER_EXAMPLES) * 2
    assert budget.source_budget(question) == 450

    # Room for the sources or the examples, not both: the sources win.
    settings.LLM_MAX_CONTEXT = 1536
    tight = budget.answer_prompt(question, [source], "en")
    assert tight == [roomy[0], roomy[-1]]
    assert budget.source_budget(question) == 450

    # Too small even for the budget: the sources get what is left.
    settings.LLM_MAX_CONTEXT = 1024
    assert not budget.examples_fit(question)
    assert budget.SOURCES_MIN_TOKENS <= budget.source_budget(question) < 450


# Counted in words, not characters: a long Latin-script name does not turn a
# Chinese question English, nor a Chinese name an English one.
@pytest.mark.parametrize(
    ("question", "language"),
    [
        ("Energiprojekt AB公司位于何处?", "zh"),
        ("FC Barcelona的主教练是谁？", "zh"),
        ("如何在 Debian 中添加一个新用户？", "zh"),
        ("备份几点开始？", "zh"),
        ("Who founded 阿里巴巴?", "en"),
        ("What does 北京大学 teach in 2020?", "en"),
        ("How do I change the default editor in Debian?", "en"),
        ("2019", "en"),
    ],
)
def test_the_answer_language_is_the_language_of_most_of_the_question_words(
    question: str, language: str
) -> None:
    assert prompts.question_language(question) == language
