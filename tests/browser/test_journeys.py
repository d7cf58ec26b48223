"""The main journeys in a real browser (Debian's Chromium driven by
Playwright), against a live server with the real worker, embedding model and
LLM server, in English and in Simplified Chinese.

Selectors use ids, names and CSS classes, never visible text, so the same
journey runs in both languages. Screenshots of each step are written to
``var/screenshots/<test name>/``.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from inference.cache import AnswerCache
from kb.models import Collection, Document
from tests.conftest import PASSWORD, World

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="Debian's chromium is not installed (make system-deps as root)",
)
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
LEAVE = (
    "Parental leave policy\n\n"
    "Employees get sixteen weeks of paid parental leave. Leave must be requested "
    "from the HR portal four weeks before it starts."
)
DOCX = (
    Path(__file__).resolve().parents[3]
    / "shared"
    / "data"
    / "docs"
    / "formats"
    / "docx-tables.docx"
)


class Journey:
    """A page plus numbered screenshots in the test's folder."""

    def __init__(self, page: Any, folder: Path, base_url: str) -> None:
        self.page = page
        self.folder = folder
        self.base_url = base_url
        self.step = 0

    def shot(self, name: str) -> None:
        self.step += 1
        self.page.screenshot(
            path=str(self.folder / f"{self.step:02d}-{name}.png"), full_page=True
        )

    def go(self, path: str) -> None:
        self.page.goto(f"{self.base_url}{path}")

    def log_in(self, username: str, *, shot: bool = False) -> None:
        self.go("/accounts/login/")
        self.page.fill("#id_username", username)
        self.page.fill("#id_password", PASSWORD)
        if shot:
            self.shot("login")
        self.page.click("#main form button[type=submit]")
        self.page.wait_for_selector("#ask-form")


@pytest.fixture
def journey(
    request: pytest.FixtureRequest,
    live_server: Any,
    ingest_world: World,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
    default_llm_url: str,
) -> Iterator[Journey]:
    from playwright.sync_api import sync_playwright

    # The journey reads a real answer and its citation: the default model.
    settings.LLM_BASE_URL = default_llm_url

    # Playwright's sync API runs an event loop; the test's own ORM calls are
    # still made from this one thread.
    # (monkeypatch: undone after the test, so no later subprocess inherits it).
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    settings.ANSWER_MAX_TOKENS = 48
    AnswerCache().purge()
    folder = SCREENSHOTS / re.sub(r"[^\w.-]+", "-", request.node.name)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    language = request.node.callspec.params["language"]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        context = browser.new_context(
            locale="zh-CN" if language == "zh-hans" else "en-US",
            extra_http_headers={"Accept-Language": language},
            viewport={"width": 1280, "height": 900},
        )
        page = context.new_page()
        page.set_default_timeout(60_000)
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on(
            "console",
            lambda message: (
                errors.append(message.text)
                if message.type == "error" and "Content Security Policy" in message.text
                else None
            ),
        )
        yield Journey(page, folder, live_server.url)
        browser.close()
        assert errors == [], errors  # no script errors, nothing blocked by the CSP


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_main_journeys(
    journey: Journey, ingest_world: World, language: str, tmp_path: Path
) -> None:
    world = ingest_world
    page = journey.page
    chinese = language == "zh-hans"

    # Log in.
    journey.log_in("alice", shot=True)
    assert ("向你的文档提问" if chinese else "Ask your documents") in page.content()
    journey.shot("home-ask")

    # Create a collection.
    journey.go("/collections/")
    page.fill("#id_name", f"Handbook {language}")
    page.click("#main section.card form button[type=submit]")
    page.wait_for_selector("#upload-files")
    collection = Collection.objects.get(name=f"Handbook {language}")
    journey.shot("collection-created")

    # Upload two files and watch them become ready without reloading.
    leave = tmp_path / "leave.txt"
    leave.write_text(LEAVE, encoding="utf-8")
    page.set_input_files("#upload-files", [str(leave), str(DOCX)])
    # Locator waits, not wait_for_function: evaluating strings would need
    # 'unsafe-eval', which the Content-Security-Policy rightly refuses.
    page.locator(".status-ready").nth(1).wait_for(timeout=180_000)
    assert Document.objects.filter(collection=collection, status="ready").count() == 2
    journey.shot("documents-ready")

    # Ask, see the streamed answer with a citation, open the citation.
    journey.go("/")
    page.fill("#question", "How many weeks of paid parental leave do employees get?")
    page.click("#ask-form button[type=submit]")
    # The passages found show first; the cited sources replace them when the
    # answer is complete.
    page.wait_for_selector(".msg-assistant.answered .citations a", timeout=120_000)
    answer = page.inner_text(".msg-assistant .answer")
    assert "sixteen weeks" in answer.lower()
    assert re.search(r"/ask/\d+/$", page.url)  # the conversation has its own address
    journey.shot("answer-cited")
    page.click(".msg-assistant .citations a")
    page.wait_for_selector(".chunk.highlight")
    assert "sixteen weeks" in page.inner_text(".chunk.highlight")
    journey.shot("citation-opened")

    # Manage a member: bob becomes a viewer.
    journey.go(f"/collections/{collection.pk}/members/")
    page.fill("#id_grantee", "bob")
    page.click("#members section.card form button[type=submit]")
    page.locator("#members td", has_text="bob").first.wait_for()
    assert collection.grants.filter(user=world.bob).exists()
    journey.shot("member-added")

    # Create an API token: shown once.
    journey.go("/account/tokens/")
    page.fill("#id_name", "wiki bot")
    page.click("#main section.card form button[type=submit]")
    page.wait_for_selector("#new-token")
    assert re.search(r"ak_[\w-]{10,}", page.content())
    journey.shot("token-created")

    # Switch language from the header, and back.
    other = "en" if chinese else "zh-hans"
    page.select_option("#language", other)
    page.click("form.language button[type=submit]")
    page.wait_for_load_state()
    assert ("Ask" if other == "en" else "提问") in page.inner_text("header nav")
    journey.shot("language-switched")
    page.select_option("#language", language)
    page.click("form.language button[type=submit]")
    page.wait_for_load_state()
    assert ("提问" if chinese else "Ask") in page.inner_text("header nav")
    assert len(list(journey.folder.glob("*.png"))) == journey.step

    # Staff: the operations dashboard, its charts drawn without any script.
    page.click("form.logout button[type=submit]")
    journey.log_in("admin")
    journey.go("/operations/dashboard/")
    page.wait_for_selector("svg.chart")
    assert page.locator("svg.chart").count() == 5
    assert "parental leave" in page.inner_text("#slowest-title + table").lower()
    journey.shot("operations-dashboard")
    assert len(list(journey.folder.glob("*.png"))) == journey.step
