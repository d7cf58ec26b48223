"""Alert thresholds (one row, editable on the dashboard) and alert states."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class AlertSettings(models.Model):
    """Thresholds for the alerts beat evaluates every minute (row pk 1). A
    threshold of 0 turns its alert off."""

    p95_latency_seconds = models.FloatField(
        _("answer p95 latency above (seconds)"), default=30.0
    )
    failure_rate_percent = models.FloatField(
        _("ingestion failure rate above (%)"), default=20.0
    )
    stalled_queue_minutes = models.PositiveIntegerField(
        _("queue stalled for (minutes)"), default=15
    )
    llm_down = models.BooleanField(_("alert when the LLM is down"), default=True)
    window_minutes = models.PositiveIntegerField(
        _("measured over the last (minutes)"), default=60
    )
    webhook_url = models.URLField(
        _("webhook URL (empty: ALERT_WEBHOOK_URL)"), blank=True, max_length=500
    )
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("alert settings")
        verbose_name_plural = _("alert settings")

    def __str__(self) -> str:
        return str(_("Alert settings"))


class AlertState(models.Model):
    """The last evaluation of one alert. ``notified`` turns true once the
    webhook accepted the current state, so a failed delivery is retried on
    the next evaluation."""

    class Name(models.TextChoices):
        P95_LATENCY = "p95_latency", _("Answer latency")
        FAILURE_RATE = "failure_rate", _("Ingestion failures")
        STALLED_QUEUE = "stalled_queue", _("Stalled queue")
        LLM_DOWN = "llm_down", _("LLM down")

    name = models.CharField(
        _("alert"), max_length=32, choices=Name.choices, unique=True
    )
    firing = models.BooleanField(_("firing"), default=False)
    since = models.DateTimeField(_("since"), null=True, blank=True)
    value = models.FloatField(_("value"), null=True, blank=True)
    message = models.TextField(_("message"), blank=True)
    evaluated_at = models.DateTimeField(_("evaluated"), null=True, blank=True)
    notified = models.BooleanField(_("webhook notified"), default=True)
    last_error = models.TextField(_("last webhook error"), blank=True)

    class Meta:
        verbose_name = _("alert state")
        verbose_name_plural = _("alert states")
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name}: {'firing' if self.firing else 'ok'}"
