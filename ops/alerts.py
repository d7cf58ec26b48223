"""Alerts: thresholds checked by beat every minute, shown on the dashboard,
and sent to a webhook when an alert starts or stops firing."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

import httpx
from django.conf import settings
from django.db import connection
from django.db.models import Max, Min
from django.utils import timezone
from django.utils.translation import gettext as _

from inference.models import Message
from kb.models import Document
from ops.models import AlertSettings, AlertState

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Evaluation:
    name: str
    firing: bool
    value: float | None
    message: str


def alert_settings() -> AlertSettings:
    row, _created = AlertSettings.objects.get_or_create(pk=1)
    return row


def _p95_latency(config: AlertSettings, since: dt.datetime) -> Evaluation:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT percentile_cont(0.95) WITHIN GROUP "
            "(ORDER BY (timings_ms->>'total_ms')::float8), count(*) "
            "FROM inference_message WHERE role = %s AND created_at >= %s "
            "AND timings_ms ? 'total_ms'",
            [Message.Role.ASSISTANT, since],
        )
        p95_ms, count = cursor.fetchone()
    threshold = config.p95_latency_seconds
    value = None if p95_ms is None else p95_ms / 1000
    firing = bool(threshold and value is not None and value > threshold)
    return Evaluation(
        AlertState.Name.P95_LATENCY,
        firing,
        value,
        _("Answer p95 latency %(value).1f s over %(n)d answers (threshold %(t).1f s).")
        % {"value": value or 0.0, "n": count, "t": threshold},
    )


# Below this many finished documents a failure rate says little.
MIN_DOCUMENTS_FOR_RATE = 3


def _failure_rate(config: AlertSettings, since: dt.datetime) -> Evaluation:
    finished = Document.objects.filter(
        updated_at__gte=since,
        status__in=[Document.Status.READY, Document.Status.FAILED],
    )
    total = finished.count()
    failed = finished.filter(status=Document.Status.FAILED).count()
    rate = 100.0 * failed / total if total else 0.0
    threshold = config.failure_rate_percent
    firing = bool(threshold and total >= MIN_DOCUMENTS_FOR_RATE and rate > threshold)
    return Evaluation(
        AlertState.Name.FAILURE_RATE,
        firing,
        rate,
        _(
            "%(failed)d of %(total)d documents failed (%(rate).0f%%, threshold %(t).0f%%)."
        )
        % {"failed": failed, "total": total, "rate": rate, "t": threshold},
    )


def _stalled_queue(config: AlertSettings, now: dt.datetime) -> Evaluation:
    """Stalled: documents wait or run, yet nothing has moved (no document
    finished, no heartbeat) for longer than the threshold. A long backlog
    that is being worked through is not stalled."""
    minutes = config.stalled_queue_minutes
    waiting = Document.objects.filter(status=Document.Status.QUEUED)
    active = Document.objects.filter(
        status__in=[
            Document.Status.PARSING,
            Document.Status.CHUNKING,
            Document.Status.EMBEDDING,
        ]
    )
    queued, running = waiting.count(), active.count()
    age = 0.0
    if queued or running:
        finished = Document.objects.filter(
            status__in=[Document.Status.READY, Document.Status.FAILED]
        ).aggregate(last=Max("updated_at"))["last"]
        beat = active.aggregate(last=Max("heartbeat_at"))["last"]
        # Waiting since the backlog's oldest document arrived, at the latest.
        oldest = waiting.aggregate(first=Min("updated_at"))["first"]
        moments = [m for m in (finished, beat) if m is not None]
        last_moved = max(moments) if moments else oldest
        if oldest is not None and last_moved is not None:
            last_moved = max(last_moved, oldest)
        if last_moved is not None:
            age = max(0.0, (now - last_moved).total_seconds() / 60)
    firing = bool(minutes and age > minutes)
    if not (queued or running):
        return Evaluation(
            AlertState.Name.STALLED_QUEUE,
            False,
            0.0,
            _("No document is waiting or being ingested."),
        )
    return Evaluation(
        AlertState.Name.STALLED_QUEUE,
        firing,
        age,
        _(
            "%(queued)d queued and %(active)d running documents; nothing has "
            "moved for %(age).0f min (threshold %(t)d min)."
        )
        % {"queued": queued, "active": running, "age": age, "t": minutes},
    )


def _llm_down(config: AlertSettings) -> Evaluation:
    from ops.health import CHECKS

    try:
        detail = CHECKS["llm"]()
        down, message = False, _("The LLM answers (%(models)s).") % {"models": detail}
    except Exception as exc:
        down, message = (
            True,
            _("The LLM server does not answer: %(error)s")
            % {"error": f"{type(exc).__name__}: {exc}"[:300]},
        )
    return Evaluation(
        AlertState.Name.LLM_DOWN,
        down and config.llm_down,
        1.0 if down else 0.0,
        message,
    )


def evaluate(now: dt.datetime | None = None) -> list[Evaluation]:
    now = now or timezone.now()
    config = alert_settings()
    since = now - dt.timedelta(minutes=max(1, config.window_minutes))
    return [
        _p95_latency(config, since),
        _failure_rate(config, since),
        _stalled_queue(config, now),
        _llm_down(config),
    ]


def webhook_url() -> str | None:
    return alert_settings().webhook_url or settings.ALERT_WEBHOOK_URL


def _notify(state: AlertState, url: str) -> None:
    status = "firing" if state.firing else "resolved"
    label = AlertState.Name(state.name).label
    payload = {
        "alert": state.name,
        "status": status,
        "value": state.value,
        "message": state.message,
        "since": state.since.isoformat() if state.since else None,
        "at": timezone.now().isoformat(),
        # Slack- and Mattermost-style incoming webhooks show this field.
        "text": f"[Archivist] {status.upper()}: {label}. {state.message}",
    }
    response = httpx.post(
        url, json=payload, timeout=settings.ALERT_WEBHOOK_TIMEOUT_SECONDS
    )
    response.raise_for_status()


def alerts_run(now: dt.datetime | None = None) -> list[AlertState]:
    """Evaluate every alert, store the states, and tell the webhook about each
    change (retrying deliveries that failed before)."""
    now = now or timezone.now()
    url = webhook_url()
    states = []
    for evaluation in evaluate(now):
        state, _created = AlertState.objects.get_or_create(name=evaluation.name)
        changed = state.firing != evaluation.firing
        if changed:
            state.since = now
            state.notified = False
        state.firing = evaluation.firing
        state.value = evaluation.value
        state.message = evaluation.message
        state.evaluated_at = now
        if not state.notified:
            if url:
                try:
                    _notify(state, url)
                    state.notified, state.last_error = True, ""
                except httpx.HTTPError as exc:
                    state.last_error = f"{type(exc).__name__}: {exc}"[:1000]
                    logger.warning("Alert webhook failed for %s: %s", state.name, exc)
            else:
                state.notified = True  # nowhere to send it; the dashboard shows it
        state.save()
        states.append(state)
    return states
