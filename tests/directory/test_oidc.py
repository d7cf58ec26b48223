"""OpenID Connect sign-in against a real provider (oidc-provider under Node)."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from django.test import Client

from accounts import oidc
from accounts.models import AuditEvent, DirectoryAccount, User
from accounts.services import token_create
from config.processes import free_port
from tests.directory.conftest import (
    PASSWORD,
    Company,
    bearer,
    collection_names,
    provider_sign_in,
    use_directories,
)
from tests.directory.servers import OidcProvider


@pytest.fixture
def oidc_on(settings: Any, provider: OidcProvider, company: Company) -> OidcProvider:
    use_directories(settings, provider=provider)
    return provider


def test_alice_sees_hr_then_loses_it_at_next_sign_in_and_token_use(
    oidc_on: OidcProvider, company: Company
) -> None:
    client = Client()
    response, _page = provider_sign_in(client, "alice")
    assert response.status_code == 302 and response["Location"] == "/"
    alice = User.objects.get(username="alice")
    assert (alice.email, alice.first_name, alice.has_usable_password()) == (
        "alice@example.org",
        "Alice",
        False,
    )
    assert collection_names(client) == ["HR"]
    signed_in = AuditEvent.objects.get(action=AuditEvent.Action.LOGIN_SUCCEEDED)
    assert signed_in.details == {"via": "oidc"}
    token = token_create(user=alice, name="script").plaintext
    assert collection_names(Client(), **bearer(token)) == ["HR"]
    assert AuditEvent.objects.filter(
        action=AuditEvent.Action.DIRECTORY_GROUPS_CHANGED, actor=alice
    ).exists()

    oidc_on.update("alice", groups=[])
    # The token's next use asks the provider again (refresh token).
    assert collection_names(Client(), **bearer(token)) == []
    assert not alice.groups.exists()
    changed = AuditEvent.objects.filter(
        action=AuditEvent.Action.DIRECTORY_GROUPS_CHANGED, actor=alice
    ).first()
    assert changed is not None and changed.details["removed"] == ["HR readers"]

    again = Client()
    provider_sign_in(again, "alice")
    assert collection_names(again) == []


def test_directory_groups_leave_an_administrators_groups_alone(
    oidc_on: OidcProvider, company: Company
) -> None:
    alice = User.objects.create(username="alice")
    alice.set_unusable_password()
    alice.save()
    DirectoryAccount.objects.create(user=alice, source=DirectoryAccount.Source.LDAP)
    company.hr_readers.user_set.add(alice)  # set by hand, not by the directory
    oidc_on.update("alice", groups=[])
    client = Client()
    provider_sign_in(client, "alice")
    assert collection_names(client) == ["HR"]


def test_staff_status_follows_the_configured_group(oidc_on: OidcProvider) -> None:
    provider_sign_in(Client(), "bob")
    assert User.objects.get(username="bob").is_staff
    oidc_on.update("bob", groups=["eng"])
    provider_sign_in(Client(), "bob")
    assert not User.objects.get(username="bob").is_staff


def test_disabled_person_cannot_sign_in_and_their_token_stops(
    oidc_on: OidcProvider,
) -> None:
    _response, page = provider_sign_in(Client(), "carol")
    assert "This account is disabled" in page
    assert not User.objects.filter(username="carol").exists()

    provider_sign_in(Client(), "alice")
    alice = User.objects.get(username="alice")
    token = token_create(user=alice, name="script").plaintext
    oidc_on.update("alice", disabled=True)
    assert Client().get("/api/v1/collections/", **bearer(token)).status_code == 401
    ended = AuditEvent.objects.get(action=AuditEvent.Action.DIRECTORY_ACCESS_ENDED)
    assert ended.actor == alice
    # Enabled again: a sign-in through the provider brings the token back.
    oidc_on.update("alice", disabled=False)
    provider_sign_in(Client(), "alice")
    assert collection_names(Client(), **bearer(token)) == ["HR"]


def test_wrong_password_stays_at_the_provider(oidc_on: OidcProvider) -> None:
    _response, page = provider_sign_in(Client(), "alice", "not-the-password")
    assert "Wrong username or password" in page
    assert not User.objects.filter(username="alice").exists()


def _corrupt_signature(id_token: str) -> str:
    header, payload, signature = id_token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)))
    raw[0] ^= 0xFF
    return ".".join(
        [header, payload, base64.urlsafe_b64encode(raw).decode().rstrip("=")]
    )


def test_id_token_with_a_bad_signature_is_refused_and_audited(
    oidc_on: OidcProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_fetch = oidc.DjangoOAuth2App.fetch_access_token

    def tampered(self: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        # Fault injection: the provider's real answer, its signature broken.
        token: dict[str, Any] = real_fetch(self, *args, **kwargs)
        token["id_token"] = _corrupt_signature(token["id_token"])
        return token

    monkeypatch.setattr(oidc.DjangoOAuth2App, "fetch_access_token", tampered)
    client = Client()
    response, _page = provider_sign_in(client, "alice")
    assert response.status_code == 302 and response["Location"] == "/accounts/login/"
    assert "_auth_user_id" not in client.session
    assert not User.objects.filter(username="alice").exists()
    failed = AuditEvent.objects.get(action=AuditEvent.Action.LOGIN_FAILED)
    assert failed.details["via"] == "oidc"
    assert "signature" in failed.details["reason"].lower()
    page = client.get("/accounts/login/").content.decode()
    assert "The sign-in could not be verified" in page


def test_id_token_with_another_nonce_is_refused_and_audited(
    oidc_on: OidcProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_save = oidc.DjangoOAuth2App.save_authorize_data

    def other_nonce(self: Any, request: Any, **kwargs: Any) -> None:
        # Fault injection: the session expects another nonce than the one
        # the provider put in the ID token.
        real_save(self, request, **{**kwargs, "nonce": "not-the-nonce-sent"})

    monkeypatch.setattr(oidc.DjangoOAuth2App, "save_authorize_data", other_nonce)
    client = Client()
    response, _page = provider_sign_in(client, "alice")
    assert response["Location"] == "/accounts/login/"
    assert "_auth_user_id" not in client.session
    failed = AuditEvent.objects.get(action=AuditEvent.Action.LOGIN_FAILED)
    assert "nonce" in failed.details["reason"].lower()


def test_a_local_account_is_not_taken_over(oidc_on: OidcProvider) -> None:
    User.objects.create_user("alice", password="local-password-1")
    client = Client()
    response, _page = provider_sign_in(client, "alice")
    assert response["Location"] == "/accounts/login/"
    assert "already exists here" in client.get("/accounts/login/").content.decode()
    assert not DirectoryAccount.objects.exists()


@pytest.mark.parametrize("issuer", ["unreachable", "wrong"])
def test_unreachable_or_wrong_issuer_gives_a_clear_message(
    oidc_on: OidcProvider, settings: Any, issuer: str
) -> None:
    settings.OIDC_ISSUER = (
        f"http://127.0.0.1:{free_port()}"
        if issuer == "unreachable"
        else f"{oidc_on.issuer}/not-the-issuer"
    )
    client = Client()
    response = client.get("/account/oidc/login/", follow=True)
    assert response.status_code == 200
    assert "The sign-in provider could not be reached" in response.content.decode()


def test_logout_ends_the_providers_session_too(oidc_on: OidcProvider) -> None:
    client = Client()
    provider_sign_in(client, "alice")
    response = client.post("/accounts/logout/")
    assert response.status_code == 302
    assert response["Location"].startswith(f"{oidc_on.issuer}/session/end?")
    assert "id_token_hint=" in response["Location"]
    assert "_auth_user_id" not in client.session
    assert AuditEvent.objects.filter(action=AuditEvent.Action.LOGOUT).exists()


@pytest.mark.parametrize(
    ("language", "label"),
    [("en", "Sign in with Test IdP"), ("zh-hans", "使用 Test IdP 登录")],
)
def test_login_page_offers_the_provider(
    oidc_on: OidcProvider, language: str, label: str
) -> None:
    page = Client().get("/accounts/login/", HTTP_ACCEPT_LANGUAGE=language)
    assert label in page.content.decode()


@pytest.mark.parametrize("signed_in", [False, True])
def test_oidc_addresses_for_everyone(oidc_on: OidcProvider, signed_in: bool) -> None:
    """Public by nature: anyone may start a sign-in, and a callback that
    carries no sign-in of this session goes back to the login page."""
    client = Client()
    if signed_in:
        client.force_login(User.objects.get(username="owner"))
    start = client.get("/account/oidc/login/")
    assert start.status_code == 302 and start["Location"].startswith(oidc_on.issuer)
    stray = client.get("/account/oidc/callback/?code=forged&state=forged")
    assert stray.status_code == 302 and stray["Location"] == "/accounts/login/"
    for method in ("post", "put", "delete"):
        for path in ("/account/oidc/login/", "/account/oidc/callback/"):
            assert getattr(client, method)(path).status_code == 405


def test_without_oidc_its_addresses_are_404(db: None) -> None:
    assert Client().get("/account/oidc/login/").status_code == 404
    assert Client().get("/account/oidc/callback/").status_code == 404


def test_local_passwords_off_but_for_break_glass(
    oidc_on: OidcProvider, settings: Any
) -> None:
    settings.LOCAL_PASSWORD_LOGIN = False
    settings.BREAK_GLASS_USERS = ["root"]
    User.objects.create_user("dave", password=PASSWORD)
    User.objects.create_superuser("root", "root@example.org", PASSWORD)
    refused = Client().post(
        "/accounts/login/", {"username": "dave", "password": PASSWORD}
    )
    assert refused.status_code == 200  # the form again, with its error
    client = Client()
    allowed = client.post(
        "/accounts/login/", {"username": "root", "password": PASSWORD}
    )
    assert allowed.status_code == 302
    page = Client().get("/accounts/login/").content.decode()
    assert 'id="break-glass"' in page and "Forgot your password?" not in page
