"""Company sign-in in a real browser: from Archivist's login page through
the OpenID Provider's own page and back, in English and Chinese; then
sign-out, which ends the provider's session too."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.browser.test_journeys import CHROMIUM, SCREENSHOTS
from tests.directory.conftest import PASSWORD, Company, start_provider, use_directories

pytestmark = [
    pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed"),
    pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is needed"),
]


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_sign_in_through_the_provider(
    live_server: Any,
    transactional_db: None,
    company: Company,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    language: str,
) -> None:
    from playwright.sync_api import sync_playwright

    provider = start_provider(tmp_path / "provider", [live_server.url])
    use_directories(settings, provider=provider)
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    folder = SCREENSHOTS / f"sign-in-{language}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    chinese = language == "zh-hans"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM,
                args=["--no-sandbox", "--disable-dev-shm-usage"],
            )
            context = browser.new_context(
                locale="zh-CN" if chinese else "en-US",
                extra_http_headers={"Accept-Language": language},
            )
            page = context.new_page()
            page.set_default_timeout(30_000)
            page.goto(f"{live_server.url}/accounts/login/")
            button = page.locator("#oidc-login")
            assert button.inner_text() == (
                "使用 Test IdP 登录" if chinese else "Sign in with Test IdP"
            )
            page.screenshot(path=str(folder / "01-login.png"))
            button.click()
            page.wait_for_selector("#op-username")
            assert page.url.startswith(provider.issuer)
            page.fill("#op-username", "alice")
            page.fill("#op-password", PASSWORD)
            page.screenshot(path=str(folder / "02-provider.png"))
            page.click("#op-submit")
            page.wait_for_selector("#ask-form")
            page.goto(f"{live_server.url}/collections/")
            listed = page.inner_text("#main")
            assert "HR" in listed and "Engineering" not in listed
            page.screenshot(path=str(folder / "03-collections.png"))

            page.click("form.logout button[type=submit]")
            page.wait_for_url(re.compile(re.escape(provider.issuer)))
            page.click("button[name=logout][value=yes]")
            page.wait_for_selector("#oidc-login")
            assert page.url.startswith(f"{live_server.url}/accounts/login/")
            page.goto(f"{live_server.url}/collections/")
            assert "/accounts/login/" in page.url
            browser.close()
    finally:
        provider.stop()
