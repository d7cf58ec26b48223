"""Portal pages for the signed-in user: profile and API tokens."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import PasswordChangeForm
from django.core.exceptions import ValidationError
from django.forms import BaseForm
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import translation
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from accounts import scopes
from accounts.current import signed_in_user
from accounts.forms import ProfileForm, TokenForm
from accounts.models import ApiToken, AuditEvent, User
from accounts.services import audit_record, token_create, token_revoke


@login_required
@require_http_methods(["GET", "POST"])
def profile(request: HttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    form = ProfileForm(request.POST or None, instance=user)
    if request.method == "POST" and form.is_valid():
        form.save()
        if user.preferred_language:
            translation.activate(user.preferred_language)
        messages.success(request, _("Profile saved."))
        response = redirect("accounts:profile")
        if user.preferred_language:
            response.set_cookie(
                "django_language", user.preferred_language, samesite="Lax"
            )
        return response
    return render(request, "accounts/profile.html", {"form": form})


def _token_form(request: HttpRequest) -> TokenForm:
    return TokenForm(
        request.POST or None, collection_choices=scopes.collection_choices(request.user)
    )


@login_required
@require_http_methods(["GET", "POST"])
def tokens(request: HttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    form = _token_form(request)
    issued_plaintext = None
    if request.method == "POST" and form.is_valid():
        try:
            issued_plaintext = _issue_token(request, user, form)
        except ValidationError as exc:
            form.add_error("collections", exc)
        else:
            form = TokenForm(collection_choices=form.fields["collections"].choices)  # type: ignore[attr-defined]
    return render(
        request,
        "accounts/tokens.html",
        {
            "form": form,
            "tokens": user.api_tokens.prefetch_related("collections"),
            "issued_plaintext": issued_plaintext,
        },
    )


def _issue_token(request: HttpRequest, user: User, form: BaseForm) -> str:
    issued = token_create(
        user=user,
        name=form.cleaned_data["name"],
        read_only=form.cleaned_data["read_only"],
        expires_at=form.expires_at(),  # type: ignore[attr-defined]
        collection_ids=[int(pk) for pk in form.cleaned_data["collections"]],
        request=request,
    )
    return issued.plaintext


@login_required
@require_POST
def token_revoke_view(request: HttpRequest, pk: int) -> HttpResponse:
    token = get_object_or_404(
        ApiToken,
        pk=pk,
        user=signed_in_user(request),
    )
    token_revoke(token=token, actor=signed_in_user(request), request=request)
    messages.success(request, _("Token revoked; it stops working immediately."))
    return redirect("accounts:tokens")


class AuditedPasswordChangeView(auth_views.PasswordChangeView):
    def form_valid(self, form: PasswordChangeForm) -> HttpResponse:
        response = super().form_valid(form)
        audit_record(
            action=AuditEvent.Action.PASSWORD_CHANGED,
            actor=self.request.user,
            request=self.request,
        )
        return response
