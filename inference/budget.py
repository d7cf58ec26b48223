"""What fits in the model's context window: the sources' token budget, and
whether the worked examples go in beside them.

The window holds the instructions, the worked examples, the sources, the
question and the answer. The examples make a small model answer better, but
never at the sources' expense: where the window is too small for both, the
sources keep their budget and the examples stay out.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.conf import settings

from inference import prompts
from inference.events import PassageDict
from inference.llm import estimate_tokens

# The fences and question around the sources, and a margin.
PROMPT_OVERHEAD_TOKENS = 200
SOURCES_MIN_TOKENS = 64
SYSTEM_TOKENS = estimate_tokens(prompts.ANSWER_SYSTEM)
EXAMPLE_TOKENS = estimate_tokens(
    "\n".join(message["content"] for message in prompts.example_messages())
)


def _room(question: str) -> int:
    """Tokens left for the sources and the worked examples."""
    return (
        settings.LLM_MAX_CONTEXT
        - settings.ANSWER_MAX_TOKENS
        - PROMPT_OVERHEAD_TOKENS
        - SYSTEM_TOKENS
        - estimate_tokens(question)
    )


def examples_fit(question: str) -> bool:
    return _room(question) - EXAMPLE_TOKENS >= settings.ANSWER_CONTEXT_TOKENS


def source_budget(question: str) -> int:
    """Tokens the sources may take: the configured budget, within what the
    context window leaves."""
    room = _room(question) - (EXAMPLE_TOKENS if examples_fit(question) else 0)
    return max(SOURCES_MIN_TOKENS, min(settings.ANSWER_CONTEXT_TOKENS, room))


def answer_prompt(
    question: str, sources: list[prompts.SourceText], language: str
) -> list[dict[str, str]]:
    """The answer's messages, with the worked examples where they fit."""
    return prompts.answer_messages(
        question, sources, language, examples=examples_fit(question)
    )


def replayed_prompt(
    question: str, passages: Sequence[PassageDict], language: str
) -> list[dict[str, str]]:
    """The answer prompt rebuilt from an answer's passage events, as the ask
    path built it: to time the server alone on the same prompt."""
    sources = [
        prompts.SourceText(p["number"], p["title"], p["page"], p["section"], p["text"])
        for p in passages
    ]
    return answer_prompt(question, sources, language)
