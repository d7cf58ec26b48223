"""Answers rendered safely: the model's text is escaped, then its [n]
markers become links to the cited passages (and only to those)."""

from __future__ import annotations

import re
from typing import Any

from django import template
from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe

register = template.Library()

_CITATION = re.compile(r"\[(\d{1,2})\]")


@register.simple_tag
def answer_html(text: str, citations: list[dict[str, Any]]) -> SafeString:
    urls = {int(c["n"]): c["url"] for c in citations or [] if c.get("url")}

    def link(match: re.Match[str]) -> str:
        number = int(match.group(1))
        if number not in urls:
            return match.group(0)
        return str(
            format_html('<a class="cite" href="{}">[{}]</a>', urls[number], number)
        )

    paragraphs = [part for part in escape(text).split("\n\n") if part.strip()]
    body = "".join(
        f"<p>{_CITATION.sub(link, part).replace(chr(10), '<br>')}</p>"
        for part in paragraphs
    )
    return mark_safe(body)  # noqa: S308 - every piece was escaped above
