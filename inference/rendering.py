"""Answers as HTML: the model's Markdown rendered, then sanitised.

Models write Markdown (lists, code blocks, tables), so it is rendered rather
than shown as literal asterisks and backticks. Safety comes first:

- raw HTML in the answer is escaped, never passed through (markdown-it's
  ``html`` option is off);
- images and links the model writes stay literal text: a model invents URLs,
  and an image would fetch from outside the building;
- ``[n]`` markers become links to the cited passages, and only to those,
  outside code;
- the result is cleaned by an allow-list sanitiser (nh3) all the same.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import nh3
from django.utils.translation import gettext as _
from markdown_it import MarkdownIt

from inference.citations import CITATION

ALLOWED_TAGS = {
    "p", "br", "strong", "em", "code", "pre", "ul", "ol", "li", "blockquote",
    "h1", "h2", "h3", "h4", "h5", "h6", "table", "thead", "tbody", "tr", "th",
    "td", "hr", "s", "a",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {"a": {"href", "class", "title"}, "ol": {"start"}}
# Code and tags are left as they are when citation markers are linked.
_CODE_OR_TAG = re.compile(r"(<pre>.*?</pre>|<code>.*?</code>|<[^>]*>)", re.DOTALL)


@lru_cache(maxsize=1)
def _markdown() -> MarkdownIt:
    parser = MarkdownIt("commonmark", {"html": False, "linkify": False})
    parser.enable("table").enable("strikethrough")
    parser.disable(["image", "link", "autolink", "reference"])
    return parser


def _link_citations(body: str, citations: Sequence[dict[str, Any]]) -> str:
    by_number = {int(c["n"]): c for c in citations if c.get("url")}
    unverified = html.escape(_("Not verified: the passage may not say this."))

    def link(match: re.Match[str]) -> str:
        citation = by_number.get(int(match.group(1)))
        if citation is None:
            return match.group(0)
        url = html.escape(str(citation["url"]))
        if citation.get("supported", True):
            return f'<a class="cite" href="{url}">{match.group(0)}</a>'
        return (
            f'<a class="cite cite-unverified" href="{url}" '
            f'title="{unverified}">{match.group(0)}</a>'
        )

    pieces = _CODE_OR_TAG.split(body)
    return "".join(
        piece if index % 2 else CITATION.sub(link, piece)
        for index, piece in enumerate(pieces)
    )


def answer_html(text: str, citations: Sequence[dict[str, Any]] | None) -> str:
    """Safe HTML for an answer, with its citations linked."""
    body = _link_citations(_markdown().render(text or ""), citations or [])
    return nh3.clean(
        body,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=set(),
        # Only relative links to passages survive: no rel needed.
        link_rel=None,
    )
