"""API tokens: shown once, stored as an HMAC digest, expiring and revocable."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import connection
from django.test import Client
from django.utils import timezone

from accounts.models import ApiToken, AuditEvent
from accounts.services import token_authenticate, token_create, token_digest
from tests.conftest import World


def test_token_plaintext_appears_nowhere_in_the_database(world: World) -> None:
    client = Client()
    client.force_login(world.alice)
    response = client.post(
        "/api/v1/tokens/", {"name": "ci"}, content_type="application/json"
    )
    assert response.status_code == 201
    plaintext = response.json()["token"]
    secret_part = plaintext[len("ak_") + 6 :]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"
        )
        tables = [row[0] for row in cursor.fetchall()]
        for table in tables:
            cursor.execute(
                f'SELECT count(*) FROM "{table}" AS t WHERE t::text LIKE %s',  # noqa: S608 - names from the catalog
                [f"%{secret_part}%"],
            )
            assert cursor.fetchone()[0] == 0, f"token found in {table}"
    token = ApiToken.objects.get(pk=response.json()["id"])
    assert token.digest == token_digest(plaintext)


def test_token_authenticates_and_records_last_use(world: World) -> None:
    client = Client(HTTP_AUTHORIZATION=f"Bearer {world.token_b_plaintext}")
    assert client.get("/api/v1/collections/").status_code == 200
    world.token_b.refresh_from_db()
    assert world.token_b.last_used_at is not None


def test_expired_token_gets_401(world: World) -> None:
    issued = token_create(
        user=world.alice,
        name="old",
        expires_at=timezone.now() - dt.timedelta(seconds=1),
    )
    client = Client(HTTP_AUTHORIZATION=f"Bearer {issued.plaintext}")
    response = client.get("/api/v1/collections/")
    assert response.status_code == 401
    assert "expired or revoked" in response.json()["detail"]


def test_revoked_token_gets_401_on_the_next_request(world: World) -> None:
    client = Client(HTTP_AUTHORIZATION=f"Bearer {world.token_b_plaintext}")
    assert client.get("/api/v1/collections/").status_code == 200
    portal = Client()
    portal.force_login(world.alice)
    assert portal.post(f"/account/tokens/{world.token_b.pk}/revoke/").status_code == 302
    assert client.get("/api/v1/collections/").status_code == 401
    assert (
        AuditEvent.objects.filter(action=AuditEvent.Action.TOKEN_REVOKED).count() == 1
    )


def test_unknown_and_malformed_tokens_get_401(world: World) -> None:
    for header in ("Bearer ak_not-a-real-token", "Bearer", "Bearer a b"):
        response = Client(HTTP_AUTHORIZATION=header).get("/api/v1/collections/")
        assert response.status_code == 401, header


def test_token_of_deactivated_user_gets_401(world: World) -> None:
    world.alice.is_active = False
    world.alice.save()
    client = Client(HTTP_AUTHORIZATION=f"Bearer {world.token_b_plaintext}")
    assert client.get("/api/v1/collections/").status_code == 401


def test_portal_shows_a_new_token_once(world: World) -> None:
    client = Client()
    client.force_login(world.bob)
    response = client.post("/account/tokens/", {"name": "wiki bot", "read_only": "on"})
    page = response.content.decode()
    token = ApiToken.objects.get(user=world.bob)
    assert token.read_only
    assert 'id="new-token"' in page
    again = client.get("/account/tokens/").content.decode()
    assert 'id="new-token"' not in again


def test_scoped_token_cannot_mint_tokens(world: World) -> None:
    client = Client(HTTP_AUTHORIZATION=f"Bearer {world.token_b_plaintext}")
    response = client.post(
        "/api/v1/tokens/", {"name": "escalate"}, content_type="application/json"
    )
    assert response.status_code == 403


def test_token_limited_to_an_unreadable_collection_is_refused(world: World) -> None:
    client = Client()
    client.force_login(world.bob)
    response = client.post(
        "/api/v1/tokens/",
        {"name": "sneaky", "collections": [world.collection_b.pk]},
        content_type="application/json",
    )
    assert response.status_code == 400
    assert "Unknown collection id" in str(response.json()["fields"]["collections"])
    portal = client.post(
        "/account/tokens/", {"name": "sneaky", "collections": [world.collection_b.pk]}
    )
    # The portal refuses it the same way: an error, no token.
    assert portal.status_code == 200
    assert portal.context["form"].errors["collections"]
    assert not ApiToken.objects.filter(user=world.bob).exists()
    mine = client.post(
        "/account/tokens/", {"name": "reader", "collections": [world.collection_a.pk]}
    )
    token = ApiToken.objects.get(user=world.bob)
    assert mine.status_code == 200 and token.collection_scoped
    assert list(token.collections.values_list("pk", flat=True)) == [
        world.collection_a.pk
    ]


def test_token_lookup_is_one_query_and_brings_its_user(
    world: World, django_assert_num_queries: Any
) -> None:
    """The lookup every API request makes: one statement for the token and
    its user, the same fields as the models read through the ORM."""
    first = token_authenticate(world.token_b_plaintext)  # records its use
    assert first is not None
    with django_assert_num_queries(1):
        token = token_authenticate(world.token_b_plaintext)
        assert token is not None
        assert token.user.username == world.alice.username
    stored = ApiToken.objects.select_related("user").get(pk=world.token_b.pk)
    for field in ApiToken._meta.concrete_fields:
        assert getattr(token, field.attname) == getattr(stored, field.attname)
    for field in type(stored.user)._meta.concrete_fields:
        assert getattr(token.user, field.attname) == getattr(stored.user, field.attname)
    assert token_authenticate("ak_" + "x" * 40) is None


def test_a_read_only_token_may_ask_but_not_write_feedback_or_summaries(
    world: World,
) -> None:
    issued = token_create(user=world.alice, name="reader", read_only=True)
    client = Client(HTTP_AUTHORIZATION=f"Bearer {issued.plaintext}")
    feedback = client.post(
        f"/api/v1/answers/{world.answer_a.pk}/feedback/",
        {"helpful": True},
        content_type="application/json",
    )
    summary = client.post(f"/api/v1/documents/{world.document_a.pk}/summary/")
    assert (feedback.status_code, summary.status_code) == (403, 403)
    assert "read-only" in feedback.json()["message"]
    assert client.get(f"/api/v1/documents/{world.document_a.pk}/").status_code == 200


def test_revocation_in_the_admin_is_audited_and_final(world: World) -> None:
    client = Client()
    client.force_login(world.admin)
    token = world.token_b
    response = client.post(
        "/admin/accounts/apitoken/",
        {"action": "revoke", "_selected_action": [token.pk]},
    )
    assert response.status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert AuditEvent.objects.filter(
        action=AuditEvent.Action.TOKEN_REVOKED, target_id=str(token.pk)
    ).exists()
    # The change form offers no way to clear it.
    form = client.get(f"/admin/accounts/apitoken/{token.pk}/change/")
    assert 'name="revoked_at' not in form.content.decode()
