from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractUser, AnonymousUser, Group
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class User(AbstractUser):
    """A person who signs in. Custom from the first migration so fields can be
    added later without a painful swap. Groups (teams, departments) are
    Django's own ``auth.Group``."""

    preferred_language = models.CharField(
        _("preferred language"),
        max_length=10,
        blank=True,
        choices=settings.LANGUAGES,
        help_text=_("Empty: follow the browser."),
    )

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")

    def __str__(self) -> str:
        return self.get_username()


class ApiToken(models.Model):
    """A bearer token for internal tools, acting as its user.

    Only an HMAC-SHA256 digest of the token is stored (keyed by
    ``API_TOKEN_HMAC_KEY``); the plaintext is shown once at creation. A token
    may be read-only and may be limited to some collections (the list lives in
    ``kb``, which owns collections; ``collection_scoped`` says the limit
    applies, so a token whose collections were all deleted sees nothing
    rather than everything).
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="api_tokens",
        verbose_name=_("user"),
    )
    name = models.CharField(_("name"), max_length=100)
    prefix = models.CharField(
        _("prefix"), max_length=16, help_text=_("First characters, to recognise it.")
    )
    digest = models.CharField(_("digest"), max_length=64, unique=True, editable=False)
    read_only = models.BooleanField(_("read-only"), default=False)
    collection_scoped = models.BooleanField(
        _("limited to chosen collections"), default=False
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    expires_at = models.DateTimeField(_("expires"), null=True, blank=True)
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True)

    # Not stored: set by token_authenticate when the directory that signs the
    # user in is due to be asked about them again.
    directory_check_due = False

    class Meta:
        verbose_name = _("API token")
        verbose_name_plural = _("API tokens")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_usable(self) -> bool:
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or self.expires_at > timezone.now()


class AuditEvent(models.Model):
    """One security-relevant event. Append-only: a database trigger refuses
    UPDATE and DELETE (retention is the one, explicit, exception)."""

    class Action(models.TextChoices):
        LOGIN_SUCCEEDED = "login.succeeded", _("Login succeeded")
        LOGIN_FAILED = "login.failed", _("Login failed")
        LOGOUT = "logout", _("Logout")
        PASSWORD_CHANGED = "password.changed", _("Password changed")
        GRANT_CREATED = "grant.created", _("Grant created")
        GRANT_CHANGED = "grant.changed", _("Grant changed")
        GRANT_REVOKED = "grant.revoked", _("Grant revoked")
        TOKEN_CREATED = "token.created", _("API token created")
        TOKEN_REVOKED = "token.revoked", _("API token revoked")
        COLLECTION_CREATED = "collection.created", _("Collection created")
        COLLECTION_CHANGED = "collection.changed", _("Collection changed")
        COLLECTION_DELETED = "collection.deleted", _("Collection deleted")
        DOCUMENT_UPLOADED = "document.uploaded", _("Document uploaded")
        DOCUMENT_DOWNLOADED = "document.downloaded", _("Document downloaded")
        DOCUMENT_DELETED = "document.deleted", _("Document deleted")
        DOCUMENT_ARCHIVED = "document.archived", _("Document archived")
        BACKUP_CREATED = "backup.created", _("Backup written")
        BACKUP_RESTORED = "backup.restored", _("Backup restored")
        EMBEDDING_MODEL_CHANGED = "embedding.changed", _("Embedding model changed")
        DIRECTORY_USER_CREATED = (
            "directory.user_created",
            _("User created from the directory"),
        )
        DIRECTORY_GROUPS_CHANGED = (
            "directory.groups_changed",
            _("Groups changed by the directory"),
        )
        DIRECTORY_ACCESS_ENDED = (
            "directory.access_ended",
            _("Directory no longer knows the user"),
        )

    created_at = models.DateTimeField(_("time"), default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("actor"),
    )
    # Kept as text too, so the record survives the user's deletion.
    actor_username = models.CharField(_("actor username"), max_length=150, blank=True)
    action = models.CharField(_("action"), max_length=40, choices=Action.choices)
    target_type = models.CharField(_("target type"), max_length=40, blank=True)
    target_id = models.CharField(_("target id"), max_length=64, blank=True)
    target_repr = models.CharField(_("target"), max_length=300, blank=True)
    ip_address = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    via_token = models.CharField(_("via token"), max_length=16, blank=True)
    details = models.JSONField(_("details"), default=dict, blank=True)

    class Meta:
        verbose_name = _("audit event")
        verbose_name_plural = _("audit log")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["action", "-created_at"], name="audit_action_time"),
        ]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.action} {self.target_repr}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            raise ValueError("Audit events are append-only.")
        super().save(*args, **kwargs)


class DirectoryAccount(models.Model):
    """Ties a user to the company directory that signs them in (OpenID
    Connect or LDAP). A user without one is local: their password is checked
    here. ``groups`` are the memberships the directory gave, so a sign-in can
    take back exactly those and never touch groups an administrator set."""

    class Source(models.TextChoices):
        OIDC = "oidc", _("OpenID Connect")
        LDAP = "ldap", _("LDAP")

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="directory_account",
        verbose_name=_("user"),
    )
    source = models.CharField(
        _("last signed in through"), max_length=10, choices=Source.choices
    )
    # The provider's stable subject ("sub"), prefixed by its issuer.
    oidc_subject = models.CharField(_("OpenID subject"), max_length=500, blank=True)
    ldap_dn = models.CharField(_("LDAP DN"), max_length=500, blank=True)
    directory_groups = models.JSONField(_("directory groups"), default=list, blank=True)
    groups = models.ManyToManyField(
        Group, blank=True, related_name="+", verbose_name=_("groups it gave")
    )
    # False once the directory no longer knows the user: their tokens stop
    # working until a sign-in through the directory succeeds again.
    active = models.BooleanField(_("known to the directory"), default=True)
    # Sealed (core.sealing): lets a token's use re-read the groups.
    refresh_token = models.TextField(_("refresh token"), blank=True, editable=False)
    synced_at = models.DateTimeField(_("last synchronised"), null=True, blank=True)

    class Meta:
        verbose_name = _("directory account")
        verbose_name_plural = _("directory accounts")
        constraints = [
            models.UniqueConstraint(
                fields=["oidc_subject"],
                condition=~models.Q(oidc_subject=""),
                name="directory_account_unique_oidc_subject",
            )
        ]

    def __str__(self) -> str:
        return f"{self.user} ({self.get_source_display()})"


# Whoever a request is from: a signed-in user or nobody. The permission entry
# points take either and deny the anonymous one.
Person = User | AnonymousUser
