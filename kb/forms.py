from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils.translation import gettext_lazy as _

from kb.models import Collection, Role


class CollectionForm(forms.ModelForm):
    class Meta:
        model = Collection
        fields = ["name", "description"]
        widgets = {"description": forms.Textarea(attrs={"rows": 3})}


class CollectionSettingsForm(CollectionForm):
    """Name, description and the retention policy (managers)."""

    class Meta(CollectionForm.Meta):
        fields = ["name", "description", "retention_action", "retention_days"]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        action, days = cleaned.get("retention_action"), cleaned.get("retention_days")
        if action and not days:
            self.add_error(
                "retention_days",
                _(
                    "Say after how many days (1 or more) documents are archived or deleted."
                ),
            )
        return cleaned


class GrantForm(forms.Form):
    """Add a member: a username or a group name, and a role."""

    grantee = forms.CharField(
        label=_("User or group"),
        max_length=150,
        help_text=_(
            "A username, or a group name prefixed with @ (for example @finance)."
        ),
    )
    role = forms.ChoiceField(label=_("Role"), choices=Role.choices, initial=Role.VIEWER)

    def clean_grantee(self) -> dict[str, Any]:
        value = self.cleaned_data["grantee"].strip()
        if value.startswith("@"):
            group = Group.objects.filter(name=value[1:]).first()
            if group is None:
                raise forms.ValidationError(
                    _("No group is called %(name)s.") % {"name": value[1:]}
                )
            return {"group": group}
        user = get_user_model().objects.filter(username=value, is_active=True).first()
        if user is None:
            raise forms.ValidationError(
                _("No active user is called %(name)s.") % {"name": value}
            )
        return {"user": user}


class RoleForm(forms.Form):
    role = forms.ChoiceField(label=_("Role"), choices=Role.choices)
