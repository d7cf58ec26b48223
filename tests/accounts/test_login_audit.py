"""Login protection and the append-only audit log."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, transaction
from django.test import Client

from accounts.models import AuditEvent
from tests.conftest import PASSWORD, World


def _login(client: Client, username: str, password: str, ip: str = "10.0.0.1") -> int:
    response = client.post(
        "/accounts/login/", {"username": username, "password": password}, REMOTE_ADDR=ip
    )
    return response.status_code


def test_login_success_and_failure_are_audited(world: World) -> None:
    client = Client()
    assert _login(client, "alice", "wrong") == 200
    assert _login(client, "alice", PASSWORD) == 302
    actions = list(
        AuditEvent.objects.order_by("id").values_list("action", "actor_username")
    )
    assert (AuditEvent.Action.LOGIN_FAILED, "alice") in actions
    assert (AuditEvent.Action.LOGIN_SUCCEEDED, "alice") in actions


def test_repeated_failures_lock_the_user_out_from_that_address(
    world: World, settings
) -> None:
    settings.AXES_FAILURE_LIMIT = 3
    client = Client()
    for _ in range(3):
        _login(client, "bob", "wrong", ip="10.0.0.7")
    assert _login(client, "bob", PASSWORD, ip="10.0.0.7") == 429
    # The lock is by user and address: bob from another address still gets in.
    assert _login(Client(), "bob", PASSWORD, ip="10.0.0.8") == 302


def test_lockout_uses_the_forwarded_address_behind_a_trusted_proxy(
    world: World, settings
) -> None:
    """Behind one reverse proxy, the client address comes from X-Forwarded-For,
    so one attacker cannot lock everybody out via the proxy's address."""
    settings.AXES_FAILURE_LIMIT = 2
    settings.TRUSTED_PROXY_COUNT = 1
    client = Client()
    for _ in range(2):
        client.post(
            "/accounts/login/",
            {"username": "bob", "password": "wrong"},
            REMOTE_ADDR="10.1.1.1",
            # The client forged the first entry; the proxy appended the real one.
            HTTP_X_FORWARDED_FOR="1.0.0.1, 8.8.4.4",
        )
    other = Client().post(
        "/accounts/login/",
        {"username": "bob", "password": PASSWORD},
        REMOTE_ADDR="10.1.1.1",
        HTTP_X_FORWARDED_FOR="1.0.0.1",
    )
    assert other.status_code == 302
    attacker = Client().post(
        "/accounts/login/",
        {"username": "bob", "password": PASSWORD},
        REMOTE_ADDR="10.1.1.1",
        HTTP_X_FORWARDED_FOR="8.8.4.4",
    )
    assert attacker.status_code == 429


def test_audit_log_refuses_updates_and_deletes(world: World) -> None:
    event = AuditEvent.objects.first()
    assert event is not None
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).update(target_repr="forged")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).delete()


def test_deleting_a_user_keeps_their_audit_trail(world: World) -> None:
    count = AuditEvent.objects.filter(actor_username="alice").count()
    assert count > 0
    world.alice.delete()
    assert (
        AuditEvent.objects.filter(actor_username="alice", actor__isnull=True).count()
        == count
    )


def test_grant_and_collection_changes_are_audited(world: World) -> None:
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {
        AuditEvent.Action.COLLECTION_CREATED,
        AuditEvent.Action.GRANT_CREATED,
        AuditEvent.Action.TOKEN_CREATED,
    } <= actions


def test_admin_can_browse_the_audit_log_but_not_change_it(world: World) -> None:
    client = Client()
    client.force_login(world.admin)
    response = client.get("/admin/accounts/auditevent/?action=grant.created")
    assert response.status_code == 200
    assert "Collection A" in response.content.decode()
    event = AuditEvent.objects.first()
    assert event is not None
    assert (
        client.post(f"/admin/accounts/auditevent/{event.pk}/delete/").status_code == 403
    )
