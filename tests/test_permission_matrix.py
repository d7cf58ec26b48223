"""Every URL of the project, for every persona and every method, against a table.

A URL added without an entry here makes ``test_every_url_has_an_entry``
fail, so nobody can ship a page without deciding who may use it. Expected
statuses follow the rules: deny by default, 404 for what you may not see,
403 for what you see but your role does not allow, 302 to the login page for
portal pages without a session, 401 for the API without credentials.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from tests.conftest import World

PERSONAS = ("anon", "alice", "bob", "charlie", "admin", "token_b")
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")

Status = int | frozenset[int]
Row = dict[str, Status]


def row(
    anon: Status,
    alice: Status,
    bob: Status,
    charlie: Status,
    admin: Status,
    token_b: Status,
) -> Row:
    return dict(zip(PERSONAS, (anon, alice, bob, charlie, admin, token_b), strict=True))


def everyone(status: Status) -> Row:
    return row(status, status, status, status, status, status)


def portal(signed_in: int) -> Row:
    """A login-required portal page: no session (a bearer token is not a
    session) means a redirect to the login page."""
    return row(302, signed_in, signed_in, signed_in, signed_in, 302)


def api(signed_in: int, token_b: int | None = None) -> Row:
    """An API endpoint: no credentials means 401, whatever the method."""
    return row(
        401,
        signed_in,
        signed_in,
        signed_in,
        signed_in,
        signed_in if token_b is None else token_b,
    )


# For each URL name: method -> persona -> status. Methods left out expect
# `default` (usually 405, after the login check).
MATRIX: dict[str, dict[str, Row]] = {
    "healthz": {"GET": everyone(200), "default": everyone(405)},
    "favicon": {"GET": everyone(301), "default": everyone(405)},
    # 200 or 503 depending on whether a test worker is up; the body is tested
    # in tests/config/test_health.py.
    "readyz": {"GET": everyone(frozenset({200, 503})), "default": everyone(405)},
    # The test client calls from 127.0.0.1, which METRICS_ALLOWED_NETWORKS
    # allows by default; other addresses and tokens: tests/ops/test_metrics.py.
    "metrics": {"GET": everyone(200), "default": everyone(405)},
    # Staff only; a POST with an empty form shows the form again with errors.
    "ops:dashboard": {
        "GET": row(302, 302, 302, 302, 200, 302),
        "POST": row(302, 302, 302, 302, 200, 302),
        "default": row(302, 302, 302, 302, 405, 302),
    },
    # Staff only; an empty form is shown again with its errors.
    "ops:evaluations": {
        "GET": row(302, 302, 302, 302, 200, 302),
        "POST": row(302, 302, 302, 302, 200, 302),
        "default": row(302, 302, 302, 302, 405, 302),
    },
    # Staff only; the matrix's id names no run.
    "ops:evaluation": {
        "GET": row(302, 302, 302, 302, 404, 302),
        "default": row(302, 302, 302, 302, 405, 302),
    },
    # Django's language switch redirects back whatever the method.
    "set_language": {"default": everyone(302)},
    # Django's form views treat PUT like POST (an empty form: shown again).
    "login": {
        "GET": everyone(200),
        "POST": everyone(200),
        "PUT": everyone(200),
        "default": everyone(405),
    },
    "logout": {"POST": everyone(302), "default": everyone(405)},
    "password_change": {
        "GET": portal(200),
        "POST": portal(200),
        "PUT": portal(200),
        "default": portal(405),
    },
    "password_change_done": {"GET": portal(200), "default": portal(405)},
    "password_reset": {
        "GET": everyone(200),
        "POST": everyone(200),
        "PUT": everyone(200),
        "default": everyone(405),
    },
    "password_reset_done": {"GET": everyone(200), "default": everyone(405)},
    # An invalid reset link shows its explanation whatever the method.
    "password_reset_confirm": {"default": everyone(200)},
    "password_reset_complete": {"GET": everyone(200), "default": everyone(405)},
    "accounts:profile": {
        "GET": portal(200),
        "POST": portal(200),
        "default": portal(405),
    },
    "accounts:tokens": {
        "GET": portal(200),
        "POST": portal(200),
        "default": portal(405),
    },
    # OpenID Connect is off here: both 404. With it on (a real provider):
    # tests/directory/test_oidc.py::test_oidc_addresses_for_everyone.
    "accounts:oidc-login": {"GET": everyone(404), "default": everyone(405)},
    "accounts:oidc-callback": {"GET": everyone(404), "default": everyone(405)},
    "accounts:token-revoke": {
        "POST": row(302, 302, 404, 404, 404, 302),
        "default": portal(405),
    },
    "kb:collection-list": {
        "GET": portal(200),
        "POST": portal(200),
        "default": portal(405),
    },
    "kb:collection-detail": {
        "GET": row(302, 200, 200, 404, 404, 302),
        "default": portal(405),
    },
    "kb:collection-settings": {
        "GET": row(302, 200, 403, 404, 404, 302),
        "POST": row(302, 200, 403, 404, 404, 302),
        "default": portal(405),
    },
    "kb:collection-delete": {
        "POST": row(302, 302, 403, 404, 404, 302),
        "default": portal(405),
    },
    "kb:collection-members": {
        "GET": row(302, 200, 403, 404, 404, 302),
        "POST": row(302, 200, 403, 404, 404, 302),
        "default": portal(405),
    },
    "kb:grant-update": {
        "POST": row(302, 302, 403, 404, 404, 302),
        "default": portal(405),
    },
    "kb:grant-delete": {
        "POST": row(302, 302, 403, 404, 404, 302),
        "default": portal(405),
    },
    "api:schema": {"GET": api(200), "default": row(401, 405, 405, 405, 405, 405)},
    "api:docs": {"GET": api(200), "default": row(401, 405, 405, 405, 405, 405)},
    "api:collection-list": {
        "GET": api(200),
        "POST": api(400, token_b=403),
        "default": api(405),
    },
    "api:collection-detail": {
        "GET": row(401, 200, 200, 404, 404, 404),
        "PUT": row(401, 200, 403, 404, 404, 404),
        "PATCH": row(401, 200, 403, 404, 404, 404),
        "DELETE": row(401, 204, 403, 404, 404, 404),
        "default": api(405),
    },
    "api:grant-list": {
        "GET": row(401, 200, 403, 404, 404, 404),
        "POST": row(401, 400, 403, 404, 404, 404),
        "default": api(405),
    },
    "api:grant-detail": {
        "PATCH": row(401, 400, 403, 404, 404, 404),
        "DELETE": row(401, 204, 403, 404, 404, 404),
        "default": api(405),
    },
    "api:token-list": {
        "GET": api(200, token_b=403),
        "POST": api(400, token_b=403),
        "default": api(405, token_b=403),
    },
    "ingest:document-table": {
        "GET": row(302, 200, 200, 404, 404, 302),
        "default": portal(405),
    },
    "ingest:document-upload": {
        "POST": row(302, 302, 403, 404, 404, 302),
        "default": portal(405),
    },
    "ingest:document-detail": {
        "GET": row(302, 200, 200, 404, 404, 302),
        "default": portal(405),
    },
    "ingest:document-download": {
        "GET": row(302, 200, 200, 404, 404, 302),
        "default": portal(405),
    },
    "ingest:document-delete": {
        "POST": row(302, 302, 403, 404, 404, 302),
        "default": portal(405),
    },
    "ingest:document-replace": {
        "POST": row(302, 302, 403, 404, 404, 302),
        "default": portal(405),
    },
    "ingest:document-retry": {
        "POST": row(302, 302, 403, 404, 404, 302),
        "default": portal(405),
    },
    "ingest:document-cancel": {
        "POST": row(302, 302, 403, 404, 404, 302),
        "default": portal(405),
    },
    "ingest:document-reingest": {
        "POST": row(302, 302, 403, 404, 404, 302),
        "default": portal(405),
    },
    "api:collection-document-list": {
        "GET": row(401, 200, 200, 404, 404, 404),
        # Uploads are multipart; a JSON body is refused as such.
        "POST": row(401, 415, 403, 404, 404, 404),
        "default": api(405),
    },
    "api:document-detail": {
        "GET": row(401, 200, 200, 404, 404, 404),
        "DELETE": row(401, 204, 403, 404, 404, 404),
        "default": api(405),
    },
    "api:document-download": {
        "GET": row(401, 200, 200, 404, 404, 404),
        "default": api(405),
    },
    # A queued document cannot be re-ingested yet (409) but can be cancelled.
    "api:document-reingest": {
        "POST": row(401, 409, 403, 404, 404, 404),
        "default": api(405),
    },
    "api:document-cancel": {
        "POST": row(401, 202, 403, 404, 404, 404),
        "default": api(405),
    },
    # Search answers everyone signed in, over what they may read (content
    # checks: tests/kb/test_search.py); without q it is a 400.
    "kb:search": {"GET": portal(200), "default": portal(405)},
    "api:search": {"GET": api(400), "default": api(405)},
    "api:token-detail": {
        "DELETE": row(401, 204, 404, 404, 404, 403),
        "default": api(405, token_b=403),
    },
    # Asking: conversations are their owner's alone (404 for everyone else,
    # staff included); a collection-scoped token sees only the conversations
    # it started, so not alice's portal conversation.
    "inference:ask": {"GET": portal(200), "default": portal(405)},
    "inference:ask-stream": {"POST": portal(400), "default": portal(405)},
    "inference:conversation": {
        "GET": row(302, 200, 404, 404, 404, 302),
        "default": portal(405),
    },
    "inference:conversation-rename": {
        "POST": row(302, 302, 404, 404, 404, 302),
        "default": portal(405),
    },
    "inference:conversation-delete": {
        "POST": row(302, 302, 404, 404, 404, 302),
        "default": portal(405),
    },
    "inference:feedback": {
        "POST": row(302, 200, 404, 404, 404, 302),
        "default": portal(405),
    },
    "inference:answer-cache": {
        "GET": row(302, 302, 302, 302, 200, 302),
        "POST": row(302, 302, 302, 302, 302, 302),
        "default": row(302, 302, 302, 302, 405, 302),
    },
    # Summaries are a read: whoever reads the document may ask for one.
    "inference:document-summarize": {
        "POST": row(302, 302, 302, 404, 404, 302),
        "default": portal(405),
    },
    "api:ask": {"POST": api(400), "default": api(405)},
    "api:conversation-list": {"GET": api(200), "default": api(405)},
    "api:conversation-detail": {
        "GET": row(401, 200, 404, 404, 404, 404),
        "PUT": row(401, 400, 404, 404, 404, 404),
        "PATCH": row(401, 400, 404, 404, 404, 404),
        "DELETE": row(401, 204, 404, 404, 404, 404),
        "default": api(405),
    },
    "api:feedback": {
        "POST": row(401, 400, 404, 404, 404, 404),
        "default": api(405),
    },
    "api:answer-cache": {
        "GET": row(401, 403, 403, 403, 200, 403),
        "DELETE": row(401, 403, 403, 403, 204, 403),
        "default": row(401, 403, 403, 403, 405, 403),
    },
    # OpenAI-compatible: models are the readable collections; an empty body is a 400.
    "openai:models": {"GET": api(200), "default": api(405)},
    # Unknown API addresses answer a JSON 404 to everyone.
    "api:not-found": {"default": everyone(404)},
    "openai:not-found": {"default": everyone(404)},
    "openai:chat-completions": {"POST": api(400), "default": api(405)},
    # No summary exists yet: 404 to read for everyone; asking for one is 202
    # for readers of A (not for token_b, limited to B).
    "api:document-summary": {
        "GET": api(404),
        "POST": row(401, 202, 202, 404, 404, 404),
        "default": api(405),
    },
}


def _walk(
    resolvers: list[URLPattern | URLResolver], namespace: str = ""
) -> list[tuple[str, URLPattern]]:
    found = []
    for entry in resolvers:
        if isinstance(entry, URLResolver):
            inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            found += _walk(entry.url_patterns, inner)
        else:
            found.append((f"{namespace}{entry.name or '<unnamed>'}", entry))
    return found


ALL_URLS = _walk(get_resolver().url_patterns)
ADMIN_URLS = sorted({name for name, _ in ALL_URLS if name.startswith("admin:")})


def test_every_url_has_an_entry() -> None:
    """Fails when a URL is added without deciding who may use it."""
    missing = sorted(
        name
        for name, _ in ALL_URLS
        if name not in MATRIX and not name.startswith("admin:")
    )
    assert missing == []


COLLECTION_DOCUMENT_URLS = {"ingest:document-table", "ingest:document-upload"}


def _kwargs(world: World, url_name: str, pattern: URLPattern) -> dict[str, object]:
    keys = set(pattern.pattern.regex.groupindex)
    values: dict[str, object] = {}
    for key in keys:
        if key == "pk" and "token" in url_name:
            values[key] = world.token_b.pk
        elif key == "pk" and "conversation" in url_name:
            values[key] = world.conversation_a.pk
        elif key == "pk" and "feedback" in url_name:
            values[key] = world.answer_a.pk
        elif (
            key == "pk"
            and "document" in url_name
            and url_name not in COLLECTION_DOCUMENT_URLS
        ):
            values[key] = world.document_a.pk
        elif key in {"pk", "collection_pk"}:
            values[key] = world.collection_a.pk
        elif key == "grant_pk":
            values[key] = world.bob_grant.pk
        elif key == "uidb64":
            values[key] = "MQ"
        elif key == "token":
            values[key] = "set-password"
        elif key in {"object_id", "id"}:
            values[key] = str(world.collection_a.pk)
        elif key == "app_label":
            values[key] = "kb"
        elif key in {"url", "unmatched"}:
            values[key] = "nowhere/"
        elif key in {"content_type_id"}:
            values[key] = 1
        else:
            raise AssertionError(
                f"No test value for URL argument {key!r} of {url_name}"
            )
    return values


def _url(world: World, url_name: str) -> str:
    pattern = next(p for name, p in ALL_URLS if name == url_name)
    if url_name == "api:grant-detail":
        return reverse(
            url_name,
            kwargs={"collection_pk": world.collection_a.pk, "pk": world.bob_grant.pk},
        )
    if url_name == "api:token-detail":
        return reverse(url_name, kwargs={"pk": world.token_b.pk})
    return reverse(url_name, kwargs=_kwargs(world, url_name, pattern))


def _client(world: World, persona: str) -> Client:
    client = Client()
    if persona == "token_b":
        client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {world.token_b_plaintext}"
    elif persona != "anon":
        client.force_login(getattr(world, persona))
    return client


def _call(client: Client, method: str, url: str) -> int:
    send: Callable[..., object] = getattr(client, method.lower())
    response = (
        send(url, content_type="application/json") if method != "GET" else send(url)
    )
    return int(response.status_code)


@pytest.mark.parametrize(
    ("url_name", "persona", "method"),
    list(itertools.product(sorted(MATRIX), PERSONAS, METHODS)),
)
def test_matrix(world: World, url_name: str, persona: str, method: str) -> None:
    spec = MATRIX[url_name]
    expected = spec.get(method, spec["default"])[persona]
    status = _call(_client(world, persona), method, _url(world, url_name))
    allowed = expected if isinstance(expected, frozenset) else {expected}
    assert status in allowed, (
        f"{method} {url_name} as {persona}: got {status}, expected {expected}"
    )


@pytest.mark.parametrize(
    ("url_name", "persona"), list(itertools.product(ADMIN_URLS, PERSONAS))
)
def test_admin_matrix(world: World, url_name: str, persona: str) -> None:
    """The admin site is for staff only: everyone else is sent to its login
    (the login page itself and the catch-all excepted)."""
    if url_name in {"admin:login", "admin:<unnamed>"}:
        pytest.skip("public by design: the admin login page and its catch-all redirect")
    status = _call(_client(world, persona), "GET", _url(world, url_name))
    if persona == "admin" and url_name == "admin:logout":
        assert status == 405  # logging out takes a POST
    elif persona == "admin":
        # 403: adding audit events or tokens in the admin is refused by design;
        # 404: "view on site" of an object that has no page.
        assert status in {200, 302, 403, 404}, f"{url_name}: {status}"
    else:
        assert status == 302, f"{url_name} as {persona}: {status}"
