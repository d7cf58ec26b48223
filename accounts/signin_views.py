"""Sign-in and sign-out: the password form (local or LDAP), OpenID Connect,
and a logout that also ends the provider's session when it offers that."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.contrib import auth, messages
from django.contrib.auth import views as auth_views
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from accounts import oidc
from accounts.backends import local_password_allowed
from accounts.directory import (
    DirectoryUnavailable,
    SignInRefused,
    sync_user,
    user_for_oidc,
)
from accounts.forms import SignInForm
from accounts.models import AuditEvent
from accounts.services import audit_record
from core.inputs import safe_next

logger = logging.getLogger(__name__)

NEXT_KEY = "oidc_next"
ID_TOKEN_KEY = "oidc_id_token"  # noqa: S105 - a session key's name
SESSION_BACKEND = "accounts.backends.DirectorySessionBackend"


class SignInView(auth_views.LoginView):
    authentication_form = SignInForm

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["oidc_enabled"] = oidc.enabled()
        context["oidc_provider_name"] = settings.OIDC_PROVIDER_NAME
        # The password form stays for LDAP, for local accounts, and (folded
        # away) for the break-glass administrator.
        context["passwords_for_everyone"] = bool(
            settings.LDAP_SERVER_URI
        ) or local_password_allowed(None)
        return context


@require_GET
def oidc_login(request: HttpRequest) -> HttpResponse:
    if not oidc.enabled():
        raise Http404
    request.session[NEXT_KEY] = safe_next(
        request, request.GET.get("next"), settings.LOGIN_REDIRECT_URL
    )
    callback = request.build_absolute_uri(reverse("accounts:oidc-callback"))
    try:
        return oidc.start(request, callback)
    except DirectoryUnavailable as exc:
        logger.error("OpenID Connect sign-in could not start: %s", exc)
        messages.error(request, _provider_unreachable())
        return redirect("login")


def _provider_unreachable() -> str:
    return _(
        "The sign-in provider could not be reached. Try again in a few minutes; "
        "if it goes on, tell your administrator."
    )


@require_GET
def oidc_callback(request: HttpRequest) -> HttpResponse:
    if not oidc.enabled():
        raise Http404
    username = ""
    try:
        identity, token = oidc.finish(request)
        username = identity.username
        user = user_for_oidc(identity)
        if user.pk is not None and not user.is_active:
            raise SignInRefused(_("This account is disabled here."))
        account = sync_user(user, identity, request=request)
    except DirectoryUnavailable as exc:
        return _refuse(request, username, str(exc), _provider_unreachable())
    except oidc.ProviderRejected as exc:
        return _refuse(
            request,
            username,
            str(exc),
            _("The sign-in could not be verified. Please try again."),
        )
    except SignInRefused as exc:
        return _refuse(request, username, str(exc), str(exc))
    oidc.keep_refresh_token(account, token)
    next_url = request.session.pop(NEXT_KEY, settings.LOGIN_REDIRECT_URL)
    auth.login(request, user, backend=SESSION_BACKEND)
    if token.get("id_token"):
        request.session[ID_TOKEN_KEY] = token["id_token"]
    return redirect(safe_next(request, next_url, settings.LOGIN_REDIRECT_URL))


def _refuse(
    request: HttpRequest, username: str, reason: str, shown: str
) -> HttpResponse:
    logger.warning("OpenID Connect sign-in refused for %r: %s", username, reason)
    audit_record(
        action=AuditEvent.Action.LOGIN_FAILED,
        actor_username=username,
        request=request,
        details={"via": "oidc", "reason": reason[:500]},
    )
    messages.error(request, shown)
    return redirect("login")


@require_POST
def logout(request: HttpRequest) -> HttpResponse:
    id_token = request.session.get(ID_TOKEN_KEY)
    auth.logout(request)
    if id_token and oidc.enabled():
        back = request.build_absolute_uri(reverse("login"))
        provider_logout = oidc.end_session_url(id_token, back)
        if provider_logout:
            return redirect(provider_logout)
    return redirect(settings.LOGOUT_REDIRECT_URL)
