from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from accounts.current import signed_in_user
from accounts.models import ApiToken, AuditEvent, DirectoryAccount, User
from accounts.services import token_revoke


class DirectoryAccountInline(admin.StackedInline):
    """Where a directory user comes from; the directory, not the admin,
    changes it (deleting it makes the user local again)."""

    model = DirectoryAccount
    can_delete = True
    extra = 0
    max_num = 0
    fields = readonly_fields = (
        "source",
        "oidc_subject",
        "ldap_dn",
        "directory_groups",
        "groups",
        "active",
        "synced_at",
    )


@admin.register(User)
class ArchivistUserAdmin(UserAdmin):
    inlines = (DirectoryAccountInline,)
    fieldsets = (
        *(UserAdmin.fieldsets or ()),
        (_("Preferences"), {"fields": ("preferred_language",)}),
    )
    list_filter = (
        "is_staff",
        "is_superuser",
        "is_active",
        "groups",
        "preferred_language",
        ("directory_account", admin.EmptyFieldListFilter),
    )


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "prefix",
        "user",
        "read_only",
        "collection_scoped",
        "created_at",
        "expires_at",
        "last_used_at",
        "revoked_at",
    )
    list_filter = (
        "read_only",
        "collection_scoped",
        ("revoked_at", admin.EmptyFieldListFilter),
    )
    search_fields = ("name", "prefix", "user__username")
    # Revocation is final and audited: only the action below sets it, and
    # nothing clears it.
    readonly_fields = ("prefix", "user", "created_at", "last_used_at", "revoked_at")
    exclude = ("digest",)
    actions = ("revoke",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Tokens are issued where their plaintext can be shown once: the portal or API.
        return False

    @admin.action(description=_("Revoke the selected tokens (final)"))
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        actor = signed_in_user(request)
        for token in queryset.filter(revoked_at__isnull=True):
            token_revoke(token=token, actor=actor, request=request)


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = (
        "created_at",
        "action",
        "actor_username",
        "target_repr",
        "ip_address",
        "via_token",
    )
    list_filter = ("action", ("created_at", admin.DateFieldListFilter))
    search_fields = ("actor_username", "target_repr", "target_id", "ip_address")
    date_hierarchy = "created_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
