from __future__ import annotations

from django.contrib import admin

from kb.models import Collection, CollectionGrant, Document


class GrantInline(admin.TabularInline):
    model = CollectionGrant
    extra = 1
    autocomplete_fields = ("user", "group")
    readonly_fields = ("granted_by", "created_at")


@admin.register(Collection)
class CollectionAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "created_by",
        "created_at",
        "version",
        "retention_action",
        "retention_days",
    )
    search_fields = ("name", "description")
    inlines = [GrantInline]
    filter_horizontal = ("api_tokens",)


@admin.register(CollectionGrant)
class CollectionGrantAdmin(admin.ModelAdmin):
    list_display = ("collection", "user", "group", "role", "granted_by", "created_at")
    list_filter = ("role", "collection")
    search_fields = ("collection__name", "user__username", "group__name")
    autocomplete_fields = ("collection", "user", "group")


@admin.register(Document)
class DocumentAdmin(admin.ModelAdmin):
    list_display = (
        "title",
        "collection",
        "status",
        "progress",
        "size_bytes",
        "created_at",
    )
    list_filter = ("status", "collection", "content_type")
    search_fields = ("title", "original_filename", "sha256")
    readonly_fields = (
        "storage_name",
        "sha256",
        "size_bytes",
        "content_type",
        "status",
        "progress",
        "failure_reason",
        "attempts",
        "heartbeat_at",
        "ingested_at",
    )
