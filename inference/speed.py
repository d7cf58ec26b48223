"""The LLM server's measured prompt speed, and the deadlines drawn from it.

A fixed first-token deadline is wrong both ways: too short for a long prompt
on a CPU, far too long for a GPU that answers in a second. Each answer
records how fast the server read its prompt (a moving average shared by every
process through the cache), and the next answer's first-token deadline is
three times the time that speed needs for its prompt, never below
``LLM_FIRST_TOKEN_TIMEOUT``.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.cache import cache

logger = logging.getLogger(__name__)

SPEED_KEY = "llm:prompt-tokens-per-second"
# Weight of the newest measurement in the moving average.
SMOOTHING = 0.2
DEADLINE_FACTOR = 3.0
# Below this many tokens a prompt says little about the server's speed.
MIN_MEASURED_TOKENS = 64


def prompt_speed() -> float:
    """Prompt tokens a second, as measured, or the configured assumption."""
    try:
        measured = cache.get(SPEED_KEY)
    except (
        Exception
    ):  # the cache is an optimisation: Redis down must not fail an answer
        logger.debug("Reading the measured LLM speed failed", exc_info=True)
        measured = None
    if isinstance(measured, int | float) and measured > 0:
        return float(measured)
    return float(settings.LLM_PROMPT_TOKENS_PER_SECOND)


def record_prompt_speed(prompt_tokens: int, seconds: float) -> None:
    if prompt_tokens < MIN_MEASURED_TOKENS or seconds <= 0:
        return
    observed = prompt_tokens / seconds
    speed = (1 - SMOOTHING) * prompt_speed() + SMOOTHING * observed
    try:
        cache.set(SPEED_KEY, speed, timeout=None)
    except Exception:  # see prompt_speed
        logger.debug("Recording the measured LLM speed failed", exc_info=True)


def first_token_deadline(prompt_tokens: int) -> float:
    """Seconds to wait for the first token of a prompt this long."""
    expected = prompt_tokens / prompt_speed()
    return max(settings.LLM_FIRST_TOKEN_TIMEOUT, DEADLINE_FACTOR * expected)
