"""Collections, role grants and documents, and the one permission entry point:
``Collection.objects.for_user(user, action, token=...)`` and its document
counterpart ``Document.objects.for_user(...)``. Every view, API endpoint,
search, answer, cache lookup and citation asks these; nothing else decides
who may see what."""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from typing import ClassVar

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVectorField
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from pgvector.django import HalfVectorField, HnswIndex

from accounts.models import ApiToken, Person, User


class Role(models.TextChoices):
    VIEWER = "viewer", _("Viewer (search and ask)")
    EDITOR = "editor", _("Editor (also upload, re-ingest and delete documents)")
    MANAGER = "manager", _("Manager (also manage members and settings)")


class Action(enum.StrEnum):
    VIEW = "view"
    EDIT = "edit"
    MANAGE = "manage"


ROLES_ALLOWED: dict[Action, tuple[str, ...]] = {
    Action.VIEW: (Role.VIEWER, Role.EDITOR, Role.MANAGER),
    Action.EDIT: (Role.EDITOR, Role.MANAGER),
    Action.MANAGE: (Role.MANAGER,),
}


def _token_allows(token: ApiToken | None, action: Action) -> bool:
    if token is None:
        return True
    if not token.is_usable:
        return False
    return not (token.read_only and action != Action.VIEW)


@dataclass(frozen=True)
class PermissionShape:
    """Everything ``for_user``'s filter depends on, and nothing else: its SQL
    is a function of these fields alone, so they are a safe key for caching
    that SQL (kb.search compiles it once per shape). ``user_id`` is None when
    nothing is allowed."""

    action: str
    user_id: int | None
    scoped_token_id: int | None


def permission_shape(
    user: Person, action: Action = Action.VIEW, token: ApiToken | None = None
) -> PermissionShape:
    if (
        not isinstance(user, User)
        or not user.is_active
        or not _token_allows(token, action)
    ):
        return PermissionShape(str(action), None, None)
    scoped = token.pk if token is not None and token.collection_scoped else None
    return PermissionShape(str(action), user.pk, scoped)


class CollectionQuerySet(models.QuerySet["Collection"]):
    def for_user(
        self,
        user: Person,
        action: Action = Action.VIEW,
        *,
        token: ApiToken | None = None,
    ) -> CollectionQuerySet:
        """Collections ``user`` may act on, as one SQL filter (the
        collections of the grants to the user or to one of their groups).
        Deny by default: no grant, no access; staff get nothing implicit here
        (they administer through the admin site). A token narrows further:
        read-only tokens only view; scoped tokens only reach their
        collections."""
        return self.for_shape(permission_shape(user, action, token))

    def for_shape(self, shape: PermissionShape) -> CollectionQuerySet:
        """``for_user``'s filter, from its shape alone (see PermissionShape)."""
        if shape.user_id is None:
            return self.none()
        roles = ROLES_ALLOWED[Action(shape.action)]
        # The user's own grants and their groups' grants, each read through
        # its index: the cost follows this user's grants, not every grant in
        # the installation (an EXISTS tested each collection against a join
        # of all grants with all group memberships; inside the search
        # statement that was a third of its time beyond the vector scan).
        direct = CollectionGrant.objects.filter(user_id=shape.user_id, role__in=roles)
        memberships = get_user_model().groups.through.objects.filter(
            user_id=shape.user_id
        )
        through_groups = CollectionGrant.objects.filter(
            group__in=memberships.values("group_id"), role__in=roles
        )
        granted = direct.values("collection_id").union(
            through_groups.values("collection_id")
        )
        queryset = self.filter(pk__in=granted)
        if shape.scoped_token_id is not None:
            queryset = queryset.filter(api_tokens=shape.scoped_token_id)
        return queryset


class Collection(models.Model):
    """A set of documents shared with users and groups through grants.

    ``version`` increases whenever the collection's documents change, so
    cached answers built on an older version are never served.
    """

    # Unique only among the collections one person may see (kb.services): a
    # global rule would tell anyone that a hidden collection's name exists.
    name = models.CharField(_("name"), max_length=200, db_index=True)
    description = models.TextField(_("description"), blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)
    version = models.PositiveBigIntegerField(_("version"), default=1, editable=False)
    # The sum of its documents' chunk_count, kept by statement triggers on
    # kb_document (migration 0005), so that search sizes a permitted set
    # from its collections instead of reading every document in them.
    chunk_count = models.PositiveBigIntegerField(_("chunks"), default=0, editable=False)
    api_tokens = models.ManyToManyField(
        ApiToken,
        blank=True,
        related_name="collections",
        verbose_name=_("API tokens limited to it"),
    )
    retention_action = models.CharField(
        _("after the retention period"),
        max_length=10,
        choices=[
            ("", _("Keep documents")),
            ("archive", _("Archive (kept, excluded from search and answers)")),
            ("purge", _("Delete")),
        ],
        default="",
        blank=True,
    )
    retention_days = models.PositiveIntegerField(
        _("retention period (days after upload)"), null=True, blank=True
    )

    objects: ClassVar[CollectionQuerySet] = CollectionQuerySet.as_manager()  # type: ignore[assignment]

    class Meta:
        verbose_name = _("collection")
        verbose_name_plural = _("collections")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        from django.urls import reverse

        return reverse("kb:collection-detail", args=[self.pk])


class CollectionGrant(models.Model):
    """A role on a collection, given to exactly one user or one group."""

    collection = models.ForeignKey(
        Collection,
        on_delete=models.CASCADE,
        related_name="grants",
        verbose_name=_("collection"),
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="collection_grants",
        verbose_name=_("user"),
    )
    group = models.ForeignKey(
        Group,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="collection_grants",
        verbose_name=_("group"),
    )
    role = models.CharField(_("role"), max_length=10, choices=Role.choices)
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("granted by"),
    )
    created_at = models.DateTimeField(_("granted"), auto_now_add=True)

    class Meta:
        verbose_name = _("grant")
        verbose_name_plural = _("grants")
        constraints = [
            models.CheckConstraint(
                condition=(Q(user__isnull=False) & Q(group__isnull=True))
                | (Q(user__isnull=True) & Q(group__isnull=False)),
                name="grant_user_xor_group",
            ),
            models.UniqueConstraint(
                fields=["collection", "user"],
                condition=Q(user__isnull=False),
                name="grant_unique_user",
            ),
            models.UniqueConstraint(
                fields=["collection", "group"],
                condition=Q(group__isnull=False),
                name="grant_unique_group",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.grantee_label} → {self.collection} ({self.role})"

    @property
    def grantee_label(self) -> str:
        if self.user_id is not None:
            return str(self.user)
        return _("group %(name)s") % {"name": self.group}


class DocumentQuerySet(models.QuerySet["Document"]):
    def for_user(
        self,
        user: Person,
        action: Action = Action.VIEW,
        *,
        token: ApiToken | None = None,
    ) -> DocumentQuerySet:
        """Documents in collections ``user`` may act on (see Collection's)."""
        permitted = Collection.objects.for_user(user, action, token=token)
        return self.filter(collection__in=permitted.values("pk"))


def document_storage_name() -> str:
    return uuid.uuid4().hex


class Document(models.Model):
    """An uploaded file and its ingestion job.

    State machine (``status``)::

        queued → parsing → chunking → embedding → ready
           ↘ failed (reason in ``failure_reason``) · cancelled

    Progress is this row (``status``, ``progress``, ``heartbeat_at``), which the
    portal polls; never a Celery result. The original is stored under a
    generated name (``storage_name``), never the user's filename.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        PARSING = "parsing", _("Parsing")
        CHUNKING = "chunking", _("Chunking")
        EMBEDDING = "embedding", _("Embedding")
        READY = "ready", _("Ready")
        FAILED = "failed", _("Failed")
        CANCELLED = "cancelled", _("Cancelled")

    collection = models.ForeignKey(
        Collection,
        on_delete=models.CASCADE,
        related_name="documents",
        verbose_name=_("collection"),
    )
    title = models.CharField(_("title"), max_length=500)
    original_filename = models.CharField(_("original filename"), max_length=500)
    storage_name = models.CharField(
        _("stored as"),
        max_length=64,
        unique=True,
        default=document_storage_name,
        editable=False,
    )
    content_type = models.CharField(_("detected type"), max_length=200, blank=True)
    size_bytes = models.PositiveBigIntegerField(_("size in bytes"), default=0)
    sha256 = models.CharField(_("SHA-256"), max_length=64)
    status = models.CharField(
        _("status"),
        max_length=12,
        choices=Status.choices,
        default=Status.QUEUED,
        db_index=True,
    )
    progress = models.PositiveSmallIntegerField(_("progress (%)"), default=0)
    failure_reason = models.TextField(_("failure reason"), blank=True)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    page_count = models.PositiveIntegerField(_("pages"), null=True, blank=True)
    chunk_count = models.PositiveIntegerField(_("chunks"), default=0)
    version = models.PositiveIntegerField(_("version"), default=1)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("uploaded by"),
    )
    created_at = models.DateTimeField(_("uploaded"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)
    heartbeat_at = models.DateTimeField(_("last heartbeat"), null=True, blank=True)
    # The worker process working on it (host:pid), when that process keeps a
    # liveness key in Redis: a job whose process died is re-queued within a
    # minute instead of after INGEST_STALL_SECONDS.
    claimed_by = models.CharField(_("claimed by"), max_length=200, blank=True)
    ingested_at = models.DateTimeField(_("ingested"), null=True, blank=True)
    # Set by retention: the original and the row are kept, the chunks are
    # gone (so search and answers skip it); re-ingesting brings it back.
    archived_at = models.DateTimeField(_("archived"), null=True, blank=True)

    objects: ClassVar[DocumentQuerySet] = DocumentQuerySet.as_manager()  # type: ignore[assignment]

    class Meta:
        verbose_name = _("document")
        verbose_name_plural = _("documents")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["collection", "sha256"],
                name="document_unique_content_per_collection",
            ),
        ]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        from django.urls import reverse

        return reverse("ingest:document-detail", args=[self.pk])

    @property
    def storage_path(self) -> str:
        """Relative path in the default storage: sharded by the name's start."""
        from kb.storage import storage_path

        return storage_path(self.storage_name)

    @property
    def is_final(self) -> bool:
        return self.status in {
            self.Status.READY,
            self.Status.FAILED,
            self.Status.CANCELLED,
        }


EMBEDDING_DIMENSIONS = 384
# Vectors up to this size (3 KB as halfvec) are kept in the chunk's row
# (storage PLAIN); pgvector's default lets PostgreSQL move a vector to the
# TOAST table when the row passes 2 KB, and the exact scan of a small
# permitted set then fetches each vector from there. Measured on 10,000
# chunks with 1,200-character texts: at 1,024 dimensions every vector had
# been moved, and the exact scan took 29.9 ms, 8.1 ms with PLAIN; at 384,
# 2 % had been moved, 7.3 ms against 6.7 ms. Larger vectors keep the default:
# two of them in a row at once (``manage.py reembed``) could outgrow a page.
INLINE_VECTOR_MAX_DIMENSIONS = 1536


def vector_storage(dimensions: int) -> str:
    """The column storage for a vector of ``dimensions``."""
    return "PLAIN" if dimensions <= INLINE_VECTOR_MAX_DIMENSIONS else "EXTERNAL"


class Chunk(models.Model):
    """A passage of a document, with its place (page, section), its vector and
    its full-text vector. ``collection`` repeats the document's so the search
    can filter by permitted collections inside the ranking SQL. Chunks of a
    document are replaced as a whole, in one transaction."""

    # Neither foreign key has an index of its own: the unique position
    # (document, ordinal) and the (collection, model) index below lead with
    # them, and each index more is one more write per chunk ingested.
    document = models.ForeignKey(
        Document,
        on_delete=models.CASCADE,
        related_name="chunks",
        verbose_name=_("document"),
        db_index=False,
    )
    collection = models.ForeignKey(
        Collection,
        on_delete=models.CASCADE,
        related_name="+",
        verbose_name=_("collection"),
        db_index=False,
    )
    ordinal = models.PositiveIntegerField(_("position"))
    text = models.TextField(_("text"))
    page = models.PositiveIntegerField(_("page"), null=True, blank=True)
    section_title = models.CharField(_("section"), max_length=500, blank=True)
    element_types = models.CharField(_("element types"), max_length=200, blank=True)
    embedding = HalfVectorField(_("embedding"), dimensions=EMBEDDING_DIMENSIONS)
    embedding_model = models.CharField(_("embedding model"), max_length=200)
    search_vector = SearchVectorField(_("full-text vector"))
    # A table of contents or an index (kb.text.looks_like_navigation): kept
    # for the document viewer, ranked after content in search, never given
    # to the LLM.
    is_navigation = models.BooleanField(
        _("table of contents or index"), default=False, db_default=False
    )

    class Meta:
        verbose_name = _("chunk")
        verbose_name_plural = _("chunks")
        ordering = ["document_id", "ordinal"]
        constraints = [
            models.UniqueConstraint(
                fields=["document", "ordinal"], name="chunk_unique_position"
            ),
        ]
        indexes = [
            # The exact scan of small permitted sets reads one collection's
            # chunks of the index's model through it, the model matched in
            # the index instead of row by row (at 10,000 chunks: p50 4.1 ms
            # instead of 4.5), and their ids, documents (for a document,
            # type or date filter) and vectors from it too, never the table's
            # rows (an index-only scan). At a million chunks with
            # real-sized texts, 10,000 permitted: p50 4.4 ms instead of 11.0.
            # It holds a second copy of every vector: 988 MiB a million.
            models.Index(
                fields=["collection", "embedding_model"],
                include=["id", "document", "embedding"],
                name="chunk_collection_vector",
            ),
            GinIndex(fields=["search_vector"], name="chunk_search_vector"),
            HnswIndex(
                name="chunk_embedding_hnsw",
                fields=["embedding"],
                m=16,
                ef_construction=64,
                opclasses=["halfvec_cosine_ops"],
            ),
        ]

    def __str__(self) -> str:
        return f"{self.document_id}#{self.ordinal}"


class CollectionTerm(models.Model):
    """How many of a collection's chunks hold a full-text word: the
    document frequencies of the search's IDF, summed over the permitted
    collections. Kept by statement-level triggers on ``kb_chunk`` (migration
    0009), so every change to chunks keeps it true in the same transaction.
    Counting a word's chunks at search time instead read every chunk that
    holds it, permitted or not: at a million chunks, 320 ms a word."""

    pk = models.CompositePrimaryKey("lexeme", "collection")
    lexeme = models.TextField(_("word"))
    # No constraint: the triggers remove a collection's rows with its chunks.
    collection = models.ForeignKey(
        Collection,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        related_name="+",
        verbose_name=_("collection"),
    )
    chunks = models.PositiveIntegerField(_("chunks"))

    class Meta:
        verbose_name = _("collection word")
        verbose_name_plural = _("collection words")

    def __str__(self) -> str:
        return f"{self.collection_id}:{self.lexeme}"


class EmbeddingIndex(models.Model):
    """Which embedding model made the vectors search uses (one row, pk 1).

    ``manage.py reembed`` builds a new model's vectors beside the current ones
    (``pending_model``, with progress) while search keeps using
    ``model_name``; the switch to the new vectors and this row's update are
    one transaction. Search compares query vectors only with chunks whose
    ``embedding_model`` is the model that embedded the query, so models are
    never mixed.
    """

    model_name = models.CharField(_("embedding model"), max_length=200)
    dimensions = models.PositiveIntegerField(_("dimensions"))
    activated_at = models.DateTimeField(_("in use since"), auto_now_add=True)
    pending_model = models.CharField(_("model being built"), max_length=200, blank=True)
    pending_dimensions = models.PositiveIntegerField(
        _("dimensions being built"), null=True, blank=True
    )
    pending_done = models.PositiveBigIntegerField(_("chunks re-embedded"), default=0)
    pending_total = models.PositiveBigIntegerField(_("chunks to re-embed"), default=0)
    pending_started_at = models.DateTimeField(_("started"), null=True, blank=True)

    class Meta:
        verbose_name = _("embedding index")
        verbose_name_plural = _("embedding index")

    def __str__(self) -> str:
        return f"{self.model_name} ({self.dimensions})"
