"""A real LDAP directory and a real OpenID Provider for each test, seeded
with the same people: alice in ``hr``, bob in ``eng`` and
``archivist-admins``, carol disabled. ``hr`` maps to the Archivist group
"HR readers", which may view collection HR; nobody's groups give
Engineering."""

from __future__ import annotations

import shutil
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from django.contrib.auth.models import Group
from django.http import HttpResponse
from django.test import Client

from accounts.models import User
from kb.models import Collection, Role
from kb.services import collection_create, grant_set
from tests.directory.servers import OidcProvider, Slapd

PASSWORD = "directory-password"
TEST_SERVER = "http://testserver"
CALLBACK = "/account/oidc/callback/"


@pytest.fixture
def slapd(tmp_path: Path) -> Iterator[Slapd]:
    if shutil.which("/usr/sbin/slapd") is None:
        pytest.skip("Debian's slapd is not installed (make system-deps as root)")
    server = Slapd(tmp_path / "slapd")
    server.start()
    server.add_person("alice", PASSWORD)
    server.add_person("bob", PASSWORD)
    server.add_person("carol", PASSWORD, disabled=True)
    server.add_to_group("hr", "alice")
    server.add_to_group("eng", "bob")
    server.add_to_group("archivist-admins", "bob")
    yield server
    server.stop()


def start_provider(folder: Path, base_urls: list[str]) -> OidcProvider:
    provider = OidcProvider(
        folder,
        redirect_uris=[f"{base}{CALLBACK}" for base in base_urls],
        logout_uris=[f"{base}/accounts/login/" for base in base_urls],
    )
    provider.start()
    provider.add_person("alice", PASSWORD, ["hr"])
    provider.add_person("bob", PASSWORD, ["eng", "archivist-admins"])
    provider.add_person("carol", PASSWORD, ["hr"], disabled=True)
    return provider


@pytest.fixture
def provider(tmp_path: Path) -> Iterator[OidcProvider]:
    if shutil.which("node") is None:
        pytest.skip("Node.js is needed for the OpenID Provider")
    server = start_provider(tmp_path / "provider", [TEST_SERVER])
    yield server
    server.stop()


@dataclass
class Company:
    """The Archivist side: collections HR and Engineering, and the group
    "HR readers" (viewer on HR) that directory group ``hr`` maps to."""

    hr: Collection
    engineering: Collection
    hr_readers: Group
    owner: User


@pytest.fixture
def company(db: None) -> Company:
    owner = User.objects.create_user("owner", password="owner-password-1")
    hr = collection_create(name="HR", creator=owner)
    engineering = collection_create(name="Engineering", creator=owner)
    hr_readers = Group.objects.create(name="HR readers")
    grant_set(collection=hr, group=hr_readers, role=Role.VIEWER, actor=owner)
    return Company(hr=hr, engineering=engineering, hr_readers=hr_readers, owner=owner)


def use_directories(
    settings: Any, *, slapd: Slapd | None = None, provider: OidcProvider | None = None
) -> None:
    settings.DIRECTORY_GROUP_MAP = {"hr": ["HR readers"]}
    settings.DIRECTORY_STAFF_GROUPS = ["archivist-admins"]
    settings.DIRECTORY_REFRESH_SECONDS = 0
    if provider is not None:
        for name, value in provider.django_settings().items():
            setattr(settings, name, value)
    if slapd is not None:
        for name, value in slapd.django_settings().items():
            setattr(settings, name, value)
        settings.AUTHENTICATION_BACKENDS = [
            *settings.AUTHENTICATION_BACKENDS,
            "accounts.ldap_backend.DirectoryLDAPBackend",
        ]


def collection_names(client: Client, **headers: Any) -> list[str]:
    response = client.get("/api/v1/collections/", **headers)
    assert response.status_code == 200, response.content
    return sorted(item["name"] for item in response.json()["results"])


def bearer(plaintext: str) -> dict[str, Any]:
    return {"HTTP_AUTHORIZATION": f"Bearer {plaintext}"}


def provider_sign_in(
    client: Client, username: str, password: str = PASSWORD
) -> tuple[Any, str]:
    """Through the provider's own login page, as a browser would: from the
    sign-in button to the callback's answer. Also the provider's page when it
    refused (for a wrong password or a disabled person)."""
    start = client.get("/account/oidc/login/")
    assert start.status_code == 302, start.content
    browser = requests.Session()
    page = browser.get(start["Location"], timeout=10)
    form_action = urllib.parse.urljoin(
        page.url, f"{urllib.parse.urlparse(page.url).path}/login"
    )
    answer = browser.post(
        form_action,
        data={"username": username, "password": password},
        allow_redirects=False,
        timeout=10,
    )
    location = answer.headers.get("Location", "")
    while location and not location.startswith(TEST_SERVER):
        answer = browser.get(
            urllib.parse.urljoin(answer.url, location),
            allow_redirects=False,
            timeout=10,
        )
        location = answer.headers.get("Location", "")
    if not location:
        return HttpResponse(status=answer.status_code), answer.text
    return client.get(location.removeprefix(TEST_SERVER)), ""
