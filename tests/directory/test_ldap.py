"""LDAP sign-in against a real OpenLDAP (Debian's slapd)."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

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
from tests.directory.servers import OidcProvider, Slapd


@pytest.fixture
def ldap_on(settings: Any, slapd: Slapd, company: Company) -> Slapd:
    use_directories(settings, slapd=slapd)
    return slapd


def sign_in(client: Client, username: str, password: str = PASSWORD) -> Any:
    return client.post("/accounts/login/", {"username": username, "password": password})


def test_alice_sees_hr_then_loses_it_at_next_sign_in_and_token_use(
    ldap_on: Slapd,
) -> None:
    client = Client()
    assert sign_in(client, "alice").status_code == 302
    alice = User.objects.get(username="alice")
    assert (alice.email, alice.first_name, alice.has_usable_password()) == (
        "alice@example.org",
        "Alice",
        False,
    )
    assert DirectoryAccount.objects.get(user=alice).ldap_dn.startswith("uid=alice,")
    signed_in = AuditEvent.objects.get(action=AuditEvent.Action.LOGIN_SUCCEEDED)
    assert signed_in.details == {"via": "ldap"}
    assert collection_names(client) == ["HR"]
    token = token_create(user=alice, name="script").plaintext
    assert collection_names(Client(), **bearer(token)) == ["HR"]

    ldap_on.remove_from_group("hr", "alice")
    assert collection_names(Client(), **bearer(token)) == []
    changed = AuditEvent.objects.filter(
        action=AuditEvent.Action.DIRECTORY_GROUPS_CHANGED, actor=alice
    ).first()
    assert changed is not None and changed.details["removed"] == ["HR readers"]
    again = Client()
    assert sign_in(again, "alice").status_code == 302
    assert collection_names(again) == []


def test_wrong_password_and_disabled_person_are_refused_and_audited(
    ldap_on: Slapd,
) -> None:
    assert sign_in(Client(), "alice", "not-the-password").status_code == 200
    assert sign_in(Client(), "carol").status_code == 200
    assert not User.objects.filter(username__in=["alice", "carol"]).exists()
    failed = set(
        AuditEvent.objects.filter(action=AuditEvent.Action.LOGIN_FAILED).values_list(
            "actor_username", flat=True
        )
    )
    assert failed == {"alice", "carol"}


def test_disabled_in_the_directory_ends_the_token(ldap_on: Slapd) -> None:
    sign_in(Client(), "alice")
    alice = User.objects.get(username="alice")
    token = token_create(user=alice, name="script").plaintext
    ldap_on.set_disabled("alice", True)
    assert Client().get("/api/v1/collections/", **bearer(token)).status_code == 401
    assert AuditEvent.objects.filter(
        action=AuditEvent.Action.DIRECTORY_ACCESS_ENDED, actor=alice
    ).exists()
    assert sign_in(Client(), "alice").status_code == 200


def test_lockout_applies_to_directory_passwords(ldap_on: Slapd, settings: Any) -> None:
    settings.AXES_FAILURE_LIMIT = 3
    for _attempt in range(3):
        sign_in(Client(), "alice", "guess")
    locked = sign_in(Client(), "alice")
    assert locked.status_code == 429
    assert not User.objects.filter(username="alice").exists()


def test_unreachable_directory_gives_a_clear_message(
    ldap_on: Slapd, settings: Any
) -> None:
    sign_in(Client(), "alice")
    token = token_create(user=User.objects.get(username="alice"), name="t").plaintext
    settings.AUTH_LDAP_SERVER_URI = f"ldap://127.0.0.1:{free_port()}"
    page = sign_in(Client(), "alice")
    assert page.status_code == 200
    assert "The company directory could not be reached" in page.content.decode()
    refused = Client().get("/api/v1/collections/", **bearer(token))
    assert refused.status_code == 503
    assert "directory could not be reached" in refused.json()["detail"]


def test_a_refused_service_account_takes_nothing_away(
    ldap_on: Slapd, settings: Any
) -> None:
    """The directory answering with an error is not the directory saying
    the person is gone: their groups stay, and the API says why it refuses."""
    sign_in(Client(), "alice")
    alice = User.objects.get(username="alice")
    token = token_create(user=alice, name="t").plaintext
    settings.AUTH_LDAP_BIND_PASSWORD = "not-the-service-password"
    assert Client().get("/api/v1/collections/", **bearer(token)).status_code == 503
    assert alice.groups.filter(name="HR readers").exists()
    assert not AuditEvent.objects.filter(
        action=AuditEvent.Action.DIRECTORY_ACCESS_ENDED
    ).exists()
    page = sign_in(Client(), "alice")
    assert "The company directory could not be reached" in page.content.decode()


def test_staff_status_follows_the_configured_group(ldap_on: Slapd) -> None:
    sign_in(Client(), "bob")
    assert User.objects.get(username="bob").is_staff
    ldap_on.remove_from_group("archivist-admins", "bob")
    sign_in(Client(), "bob")
    assert not User.objects.get(username="bob").is_staff


def test_a_local_account_is_not_taken_over(ldap_on: Slapd) -> None:
    local = User.objects.create_user("alice", password="local-password-1")
    assert sign_in(Client(), "alice").status_code == 200
    assert not DirectoryAccount.objects.filter(user=local).exists()
    # The local password still works for the local account.
    assert sign_in(Client(), "alice", "local-password-1").status_code == 302


def test_oidc_then_ldap_is_the_same_person(
    settings: Any, slapd: Slapd, provider: OidcProvider, company: Company
) -> None:
    use_directories(settings, slapd=slapd, provider=provider)
    through_oidc = Client()
    provider_sign_in(through_oidc, "alice")
    assert collection_names(through_oidc) == ["HR"]
    through_ldap = Client()
    assert sign_in(through_ldap, "alice").status_code == 302
    assert User.objects.filter(username="alice").count() == 1
    assert collection_names(through_ldap) == ["HR"]
    account = DirectoryAccount.objects.get(user__username="alice")
    assert account.oidc_subject and account.ldap_dn
    assert account.source == DirectoryAccount.Source.LDAP
