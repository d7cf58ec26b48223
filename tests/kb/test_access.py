"""Who sees which collection, through every door, and how fast changes apply."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse

from kb.models import Action, Collection, Role
from kb.services import grant_revoke, grant_set
from tests.conftest import World, make_user


def _ids(queryset) -> set[int]:
    return set(queryset.values_list("pk", flat=True))


def test_for_user_follows_grants_and_groups(world: World) -> None:
    a, b = world.collection_a.pk, world.collection_b.pk
    assert _ids(Collection.objects.for_user(world.alice, Action.MANAGE)) == {a, b}
    assert _ids(Collection.objects.for_user(world.bob, Action.VIEW)) == {a}
    assert _ids(Collection.objects.for_user(world.bob, Action.EDIT)) == set()
    assert _ids(Collection.objects.for_user(world.charlie, Action.VIEW)) == set()


def test_staff_get_nothing_by_accident(world: World) -> None:
    """A superuser without grants sees no collection in the portal or API."""
    assert _ids(Collection.objects.for_user(world.admin, Action.VIEW)) == set()
    client = Client()
    client.force_login(world.admin)
    assert client.get(f"/collections/{world.collection_a.pk}/").status_code == 404
    assert client.get("/api/v1/collections/").json()["results"] == []


def test_inactive_user_sees_nothing(world: World) -> None:
    world.alice.is_active = False
    world.alice.save()
    assert _ids(Collection.objects.for_user(world.alice, Action.VIEW)) == set()


def test_scoped_token_reaches_only_its_collections(world: World) -> None:
    client = Client(HTTP_AUTHORIZATION=f"Bearer {world.token_b_plaintext}")
    names = [c["name"] for c in client.get("/api/v1/collections/").json()["results"]]
    assert names == ["Collection B"]
    assert (
        client.get(f"/api/v1/collections/{world.collection_a.pk}/").status_code == 404
    )


def test_scoped_token_whose_collections_are_gone_sees_nothing(world: World) -> None:
    world.collection_b.delete()
    client = Client(HTTP_AUTHORIZATION=f"Bearer {world.token_b_plaintext}")
    assert client.get("/api/v1/collections/").json()["results"] == []


def test_read_only_token_cannot_write(world: World) -> None:
    from accounts.services import token_create

    issued = token_create(user=world.alice, name="reader", read_only=True)
    client = Client(HTTP_AUTHORIZATION=f"Bearer {issued.plaintext}")
    url = f"/api/v1/collections/{world.collection_a.pk}/"
    assert client.get(url).status_code == 200
    response = client.patch(
        url, {"description": "changed"}, content_type="application/json"
    )
    assert response.status_code == 403
    world.collection_a.refresh_from_db()
    assert world.collection_a.description == "handbook"


def test_removing_bob_from_the_group_applies_on_the_next_request(world: World) -> None:
    client = Client()
    client.force_login(world.bob)
    url = f"/collections/{world.collection_a.pk}/"
    assert client.get(url).status_code == 200
    world.bob.groups.remove(world.readers)
    assert client.get(url).status_code == 404
    assert (
        client.get(f"/api/v1/collections/{world.collection_a.pk}/").status_code == 404
    )


def test_revoking_a_grant_applies_on_the_next_request(world: World) -> None:
    client = Client()
    client.force_login(world.bob)
    url = f"/api/v1/collections/{world.collection_a.pk}/"
    assert client.get(url).status_code == 200
    grant_revoke(grant=world.bob_grant, actor=world.alice)
    assert client.get(url).status_code == 404


def test_the_last_manager_cannot_be_removed_or_demoted(world: World) -> None:
    manager_grant = world.collection_a.grants.get(user=world.alice)
    with pytest.raises(ValidationError):
        grant_revoke(grant=manager_grant, actor=world.alice)
    with pytest.raises(ValidationError):
        grant_set(
            collection=world.collection_a,
            user=world.alice,
            role=Role.VIEWER,
            actor=world.alice,
        )


def test_manager_adds_and_changes_members_in_the_portal(world: World) -> None:
    dave = make_user("dave")
    client = Client()
    client.force_login(world.alice)
    members = f"/collections/{world.collection_a.pk}/members/"
    response = client.post(
        members, {"grantee": "dave", "role": "editor"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    assert world.collection_a.grants.get(user=dave).role == Role.EDITOR
    response = client.post(members, {"grantee": "nobody-here", "role": "viewer"})
    assert "No active user is called nobody-here" in response.content.decode()
    grant = world.collection_a.grants.get(user=dave)
    client.post(f"{members}{grant.pk}/", {"role": "manager"})
    grant.refresh_from_db()
    assert grant.role == Role.MANAGER


def test_viewer_cannot_manage_members(world: World) -> None:
    client = Client()
    client.force_login(world.bob)
    response = client.post(
        f"/collections/{world.collection_a.pk}/members/",
        {"grantee": "bob", "role": "manager"},
    )
    assert response.status_code == 403
    assert not world.collection_a.grants.filter(user=world.bob).exists()


def test_collection_list_shows_only_visible_collections(world: World) -> None:
    client = Client()
    client.force_login(world.bob)
    page = client.get(reverse("kb:collection-list")).content.decode()
    assert "Collection A" in page
    assert "Collection B" not in page
    client.force_login(world.charlie)
    page = client.get(reverse("kb:collection-list")).content.decode()
    assert "Collection A" not in page and "You have no collections yet" in page


def test_api_creates_collection_and_grants(world: World) -> None:
    client = Client()
    client.force_login(world.charlie)
    response = client.post(
        "/api/v1/collections/",
        {"name": "Charlie's notes"},
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["role"] == "manager"
    response = client.post(
        f"/api/v1/collections/{body['id']}/grants/",
        {"group": "readers", "role": "viewer"},
        content_type="application/json",
    )
    assert response.status_code == 201
    client.force_login(world.bob)
    assert client.get(f"/api/v1/collections/{body['id']}/").status_code == 200


def test_duplicate_collection_name_is_a_clear_error(world: World) -> None:
    client = Client()
    client.force_login(world.alice)
    response = client.post(
        "/api/v1/collections/",
        {"name": "collection a"},
        content_type="application/json",
    )
    # A taken name is a conflict with existing data, in the API's error shape.
    assert response.status_code == 409
    body = response.json()
    assert body["code"] == "conflict" and "already exists" in body["message"]


def test_a_hidden_collections_name_is_not_confirmed(world: World) -> None:
    """charlie may not see Collection A: creating or renaming to its name
    works for him, so the answer tells him nothing about it."""
    client = Client()
    client.force_login(world.charlie)
    created = client.post(
        "/api/v1/collections/",
        {"name": "Collection A"},
        content_type="application/json",
    )
    assert created.status_code == 201
    other = client.post(
        "/api/v1/collections/", {"name": "Mine"}, content_type="application/json"
    )
    renamed = client.patch(
        f"/api/v1/collections/{other.json()['id']}/",
        {"name": "collection b"},
        content_type="application/json",
    )
    assert renamed.status_code == 200
    portal = client.post("/collections/", {"name": "COLLECTION A", "description": ""})
    assert portal.status_code == 200
    assert "already exists" in portal.content.decode()


def test_the_permission_shape_is_all_the_filter_depends_on(world: World) -> None:
    """kb.search caches the permission SQL by this shape: every change that
    changes what for_user returns must change the shape too."""
    from django.utils import timezone

    from kb.models import permission_shape

    token = world.token_b
    before = permission_shape(world.alice, Action.VIEW, token)
    sql = str(Collection.objects.for_user(world.alice, token=token).query)
    assert str(Collection.objects.for_shape(before).query) == sql
    token.revoked_at = timezone.now()
    revoked = permission_shape(world.alice, Action.VIEW, token)
    assert revoked != before
    assert not Collection.objects.for_shape(revoked).exists()
    world.alice.is_active = False
    assert permission_shape(world.alice).user_id is None
    assert permission_shape(world.bob) != permission_shape(world.charlie)
