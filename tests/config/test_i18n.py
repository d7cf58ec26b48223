"""English and Simplified Chinese: the catalogue is complete and compiled,
and the language follows the browser, the profile and the switch."""

from __future__ import annotations

import gettext
import re
from pathlib import Path

from django.test import Client

from tests.conftest import World

CATALOGUE = Path(__file__).resolve().parents[2] / "locale" / "zh_Hans" / "LC_MESSAGES"


def _po_entries() -> dict[str, str]:
    entries: dict[str, str] = {}
    text = (CATALOGUE / "django.po").read_text(encoding="utf-8")
    for block in text.split("\n\n")[1:]:
        if block.lstrip().startswith("#~"):
            continue
        msgid = re.search(r'^msgid ((?:".*"\n?)+)', block, re.M)
        msgstr = re.search(r'^msgstr(?:\[0\])? ((?:".*"\n?)+)', block, re.M)
        if msgid and msgstr:
            key = "".join(re.findall(r'"(.*)"', msgid.group(1)))
            entries[key] = "".join(re.findall(r'"(.*)"', msgstr.group(1)))
    return entries


def test_every_string_has_a_chinese_translation() -> None:
    entries = _po_entries()
    assert len(entries) > 300
    untranslated = [msgid for msgid, msgstr in entries.items() if not msgstr]
    assert untranslated == []
    assert "fuzzy" not in (CATALOGUE / "django.po").read_text(encoding="utf-8")


def test_compiled_catalogue_matches_the_source() -> None:
    with (CATALOGUE / "django.mo").open("rb") as handle:
        compiled = gettext.GNUTranslations(handle)
    stale = [
        msgid
        for msgid, msgstr in _po_entries().items()
        if "%" not in msgid
        and compiled.gettext(msgid.replace('\\"', '"')) != msgstr.replace('\\"', '"')
    ]
    assert stale == [], (
        "run: msgfmt -o locale/zh_Hans/LC_MESSAGES/django.mo locale/zh_Hans/LC_MESSAGES/django.po"
    )


def test_language_from_browser_profile_and_switch(world: World) -> None:
    client = Client(HTTP_ACCEPT_LANGUAGE="zh-Hans")
    client.force_login(world.bob)
    page = client.get("/").content.decode()
    assert "向你的文档提问" in page and 'lang="zh-hans"' in page
    english = Client(HTTP_ACCEPT_LANGUAGE="en")
    english.force_login(world.bob)
    assert "Ask your documents" in english.get("/").content.decode()
    world.bob.preferred_language = "zh-hans"
    world.bob.save()
    assert "向你的文档提问" in english.get("/").content.decode()
    english.post("/i18n/setlang/", {"language": "en", "next": "/"})
    assert "Ask your documents" in english.get("/").content.decode()
