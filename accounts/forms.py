from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.directory import DirectoryUnavailable
from accounts.models import User

logger = logging.getLogger(__name__)


class ProfileForm(forms.ModelForm):
    class Meta:
        model = User
        fields = ["first_name", "last_name", "email", "preferred_language"]


class TokenForm(forms.Form):
    name = forms.CharField(
        label=_("Name"),
        max_length=100,
        help_text=_("What will use it, e.g. “wiki bot”."),
    )
    expires_in_days = forms.IntegerField(
        label=_("Expires after (days)"),
        min_value=1,
        max_value=3650,
        required=False,
        help_text=_("Empty: never expires."),
    )
    read_only = forms.BooleanField(
        label=_("Read-only (search and ask only)"), required=False
    )
    collections = forms.MultipleChoiceField(
        label=_("Limit to collections"),
        required=False,
        help_text=_("None chosen: every collection you can read."),
    )

    def __init__(
        self, *args: object, collection_choices: list[tuple[int, str]], **kwargs: object
    ) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.fields["collections"].choices = collection_choices  # type: ignore[attr-defined]

    def expires_at(self) -> dt.datetime | None:
        days = self.cleaned_data.get("expires_in_days")
        return timezone.now() + dt.timedelta(days=days) if days else None


class DirectoryAwareMixin:
    """An unreachable directory says so, instead of "wrong password" or a 500."""

    def clean(self) -> dict[str, Any]:
        try:
            return super().clean()  # type: ignore[misc]
        except DirectoryUnavailable as exc:
            logger.error("Sign-in: the LDAP directory could not be reached: %s", exc)
            raise ValidationError(
                _(
                    "The company directory could not be reached, so your password "
                    "could not be checked. Try again in a few minutes; if it goes "
                    "on, tell your administrator."
                ),
                code="directory_unavailable",
            ) from exc


class SignInForm(DirectoryAwareMixin, AuthenticationForm):
    pass


class AdminSignInForm(DirectoryAwareMixin, AdminAuthenticationForm):
    pass
