"""Conversations, their messages (questions and cited answers), feedback on
answers, and stored document summaries."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from kb.models import Document


class Conversation(models.Model):
    """One user's thread of questions; never visible to anyone else."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="conversations",
        verbose_name=_("user"),
    )
    title = models.CharField(_("title"), max_length=200, blank=True)
    # Started through this API token. A token limited to some collections sees
    # only the conversations it started (others may quote other collections).
    api_token = models.ForeignKey(
        "accounts.ApiToken",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("API token"),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("conversation")
        verbose_name_plural = _("conversations")
        ordering = ["-updated_at", "-id"]
        indexes = [
            models.Index(fields=["user", "-updated_at"], name="conversation_recent")
        ]

    def __str__(self) -> str:
        return self.title or f"#{self.pk}"


class Message(models.Model):
    class Role(models.TextChoices):
        USER = "user", _("Question")
        ASSISTANT = "assistant", _("Answer")

    class Status(models.TextChoices):
        COMPLETE = "complete", _("Complete")
        NOT_FOUND = "not_found", _("Not in the knowledge base")
        FAILED = "failed", _("Failed")
        CANCELLED = "cancelled", _("Cancelled")

    conversation = models.ForeignKey(
        Conversation,
        on_delete=models.CASCADE,
        related_name="messages",
        verbose_name=_("conversation"),
    )
    role = models.CharField(_("role"), max_length=16, choices=Role.choices)
    content = models.TextField(_("content"))
    # The follow-up rewritten as a question that stands on its own (used for retrieval).
    standalone_question = models.TextField(_("standalone question"), blank=True)
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.COMPLETE
    )
    error = models.TextField(_("error"), blank=True)
    # [{"n": 1, "chunk_id": .., "document_id": .., "collection_id": .., "title": ..,
    #   "page": .., "url": ..}] for every passage the answer cites.
    citations = models.JSONField(_("citations"), default=list, blank=True)
    # Passages retrieved for the answer (chunk ids), kept to re-check permissions.
    passages = models.JSONField(_("passages"), default=list, blank=True)
    from_cache = models.CharField(_("answer cache tier"), max_length=16, blank=True)
    timings_ms = models.JSONField(_("timings (ms)"), default=dict, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("message")
        verbose_name_plural = _("messages")
        ordering = ["conversation_id", "id"]

    def __str__(self) -> str:
        return f"{self.role}: {self.content[:60]}"


class Feedback(models.Model):
    """A thumbs up or down, with an optional comment, on one answer."""

    message = models.ForeignKey(
        Message,
        on_delete=models.CASCADE,
        related_name="feedback",
        verbose_name=_("answer"),
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, verbose_name=_("user")
    )
    helpful = models.BooleanField(_("helpful"))
    comment = models.TextField(_("comment"), blank=True, max_length=2000)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("feedback")
        verbose_name_plural = _("feedback")
        constraints = [
            models.UniqueConstraint(
                fields=["message", "user"], name="feedback_once_per_answer"
            )
        ]

    def __str__(self) -> str:
        return f"{'+' if self.helpful else '-'} on {self.message_id}"


class DocumentSummary(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Summarizing")
        READY = "ready", _("Ready")
        FAILED = "failed", _("Failed")

    document = models.OneToOneField(
        Document,
        on_delete=models.CASCADE,
        related_name="summary",
        verbose_name=_("document"),
    )
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.QUEUED
    )
    text = models.TextField(_("summary"), blank=True)
    error = models.TextField(_("error"), blank=True)
    model = models.CharField(_("model"), max_length=200, blank=True)
    document_version = models.PositiveIntegerField(_("document version"), default=1)
    progress = models.PositiveSmallIntegerField(_("progress"), default=0)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("document summary")
        verbose_name_plural = _("document summaries")

    def __str__(self) -> str:
        return f"summary of {self.document_id}"


class EvaluationRun(models.Model):
    """One question set run through the real ask path as one user.

    ``queued`` → ``running`` → ``complete``, or ``failed`` with ``error``.
    Each question is an :class:`EvaluationResult` row, created with the run
    and filled in as it is answered, so progress is a count of filled rows.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        COMPLETE = "complete", _("Complete")
        FAILED = "failed", _("Failed")

    name = models.CharField(_("name"), max_length=200)
    question_set = models.CharField(_("question set"), max_length=500)
    synthetic = models.BooleanField(_("synthetic questions"), default=False)
    asker = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        related_name="+",
        verbose_name=_("asked as"),
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("started by"),
    )
    collection_ids = models.JSONField(_("collections"), default=list, blank=True)
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.QUEUED
    )
    total = models.PositiveIntegerField(_("questions"), default=0)
    done = models.PositiveIntegerField(_("answered"), default=0)
    # The model, prompt version and answer settings the run used.
    configuration = models.JSONField(_("configuration"), default=dict, blank=True)
    metrics = models.JSONField(_("metrics"), default=dict, blank=True)
    error = models.TextField(_("error"), blank=True)
    # Questions whose prompt is also sent straight to the LLM server, to
    # measure what the platform adds to its time to first token.
    overhead_sample = models.PositiveIntegerField(_("overhead sample"), default=0)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)

    class Meta:
        verbose_name = _("evaluation run")
        verbose_name_plural = _("evaluation runs")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.status})"

    @property
    def percent(self) -> int:
        return round(100 * self.done / self.total) if self.total else 0


class EvaluationResult(models.Model):
    """One question of a run: what was expected, and what came back."""

    run = models.ForeignKey(
        EvaluationRun,
        on_delete=models.CASCADE,
        related_name="results",
        verbose_name=_("run"),
    )
    position = models.PositiveIntegerField(_("position"))
    question = models.TextField(_("question"))
    expected_answers = models.JSONField(_("expected answers"), default=list)
    expected_documents = models.JSONField(_("expected documents"), default=list)
    answerable = models.BooleanField(_("answerable"), default=True)
    answered = models.BooleanField(_("done"), default=False)
    status = models.CharField(_("answer status"), max_length=16, blank=True)
    answer = models.TextField(_("answer"), blank=True)
    citations = models.JSONField(_("citations"), default=list, blank=True)
    retrieved_documents = models.JSONField(
        _("retrieved documents"), default=list, blank=True
    )
    scores = models.JSONField(_("scores"), default=dict, blank=True)
    first_token_ms = models.FloatField(_("time to first token (ms)"), null=True)
    total_ms = models.FloatField(_("total time (ms)"), null=True)
    direct_first_token_ms = models.FloatField(
        _("LLM server's own time to first token (ms)"), null=True
    )

    class Meta:
        verbose_name = _("evaluation result")
        verbose_name_plural = _("evaluation results")
        ordering = ["run_id", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["run", "position"], name="evaluation_result_position"
            )
        ]

    def __str__(self) -> str:
        return f"{self.run_id}#{self.position}"
