"""Answers rendered safely in templates (see ``inference.rendering``)."""

from __future__ import annotations

from typing import Any

from django import template
from django.utils.safestring import SafeString, mark_safe

from inference.rendering import answer_html as render_answer

register = template.Library()


@register.simple_tag
def answer_html(text: str, citations: list[dict[str, Any]]) -> SafeString:
    return mark_safe(render_answer(text, citations))  # noqa: S308 - sanitised by nh3
