"""The model's decline marker: recognised where the model puts it, never
read into an ordinary answer, and never streamed to the reader."""

from __future__ import annotations

import pytest

from inference.declines import is_decline, may_become_decline


@pytest.mark.parametrize(
    "reply",
    [
        "NO_ANSWER",
        "**NO_ANSWER**",
        "NO_ANSWER [1]",
        "The sources do not say. NO_ANSWER.",
    ],
)
def test_a_decline_is_recognised(reply: str) -> None:
    assert is_decline(reply)


@pytest.mark.parametrize(
    "reply", ["There is no answer key in the manual [1].", "No, it runs at 02:30 [1]."]
)
def test_an_answer_that_mentions_no_answer_is_not_a_decline(reply: str) -> None:
    assert not is_decline(reply)


def test_text_that_may_still_become_the_marker_is_held_back() -> None:
    assert may_become_decline("NO_")
    assert may_become_decline(" N")
    assert not may_become_decline("Nightly")
    assert not may_become_decline("备份")
