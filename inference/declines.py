"""Whether the model declined: its reply opens or closes with the marker the
prompt asks for when the passages do not answer the question."""

from __future__ import annotations

import re

from inference.prompts import DECLINE_MARKER

# Around a decline marker: spaces, quotes, emphasis, citation markers.
_DECORATION = re.compile(r"[\s\[\]\d.。:：,，*`'\"“”]+")


def is_decline(answer: str) -> bool:
    """The model said the sources do not answer the question: the marker
    opens or closes its reply (small models sometimes explain first)."""
    text = _DECORATION.sub("", answer).upper()
    return text.startswith(DECLINE_MARKER) or text.endswith(DECLINE_MARKER)


def may_become_decline(text: str) -> bool:
    """Whether the text so far could still open with the decline marker, so
    it is held back instead of streamed."""
    head = _DECORATION.sub("", text).upper()
    return DECLINE_MARKER.startswith(head[: len(DECLINE_MARKER)])
