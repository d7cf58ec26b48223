"""Content-Security-Policy everywhere, and no inline scripts anywhere."""

from __future__ import annotations

import re
from pathlib import Path

from django.test import Client

from tests.conftest import World

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


def test_pages_carry_a_strict_policy(world: World) -> None:
    client = Client()
    client.force_login(world.alice)
    for url in ("/", "/collections/", "/search/", "/api/v1/docs/", "/accounts/login/"):
        response = client.get(url)
        policy = response["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy, url
        assert "unsafe-inline" not in policy.split("script-src", 1)[1].split(";")[0]
        assert response["X-Content-Type-Options"] == "nosniff"


def test_no_template_has_an_inline_script() -> None:
    inline = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE)
    offenders = [
        str(path.relative_to(TEMPLATES))
        for path in TEMPLATES.rglob("*.html")
        if inline.search(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []


def test_api_docs_load_their_script_from_the_server(world: World) -> None:
    client = Client()
    client.force_login(world.alice)
    page = client.get("/api/v1/docs/").content.decode()
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page), page
