"""/metrics for Prometheus, and the staff dashboard."""

from __future__ import annotations

import hmac
import ipaddress

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from accounts.network import client_ip
from core.metrics import render as render_metrics
from kb.crypto import keyring
from kb.index import active_index
from ops import charts
from ops.alerts import alert_settings, alerts_run
from ops.dashboard import RANGES, dashboard_data
from ops.live_metrics import LiveStateCollector
from ops.models import AlertSettings, AlertState


def metrics_allowed(request: HttpRequest) -> bool:
    """A request bearing METRICS_TOKEN, or one from METRICS_ALLOWED_NETWORKS."""
    header = request.headers.get("Authorization", "")
    if settings.METRICS_TOKEN and header.startswith("Bearer "):
        return hmac.compare_digest(
            header.removeprefix("Bearer ").encode(), settings.METRICS_TOKEN.encode()
        )
    address = client_ip(request)
    if not address:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(
        ip in ipaddress.ip_network(network, strict=False)
        for network in settings.METRICS_ALLOWED_NETWORKS
    )


@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    if not metrics_allowed(request):
        return HttpResponse(
            _(
                "Metrics need the METRICS_TOKEN bearer token or an address in "
                "METRICS_ALLOWED_NETWORKS."
            ),
            status=403,
            content_type="text/plain; charset=utf-8",
        )
    body, content_type = render_metrics(LiveStateCollector())
    return HttpResponse(body, content_type=content_type)


class AlertSettingsForm(forms.ModelForm):
    webhook_url = forms.URLField(
        label=gettext_lazy("webhook URL (empty: ALERT_WEBHOOK_URL)"),
        required=False,
        assume_scheme="https",
        max_length=500,
    )

    class Meta:
        model = AlertSettings
        fields = [
            "p95_latency_seconds",
            "failure_rate_percent",
            "stalled_queue_minutes",
            "llm_down",
            "window_minutes",
            "webhook_url",
        ]

    def clean(self) -> dict[str, object]:
        cleaned = super().clean() or {}
        for name in ("p95_latency_seconds", "failure_rate_percent"):
            value = cleaned.get(name)
            if isinstance(value, float) and value < 0:
                self.add_error(
                    name, _("Use 0 to turn the alert off, not a negative value.")
                )
        return cleaned


@staff_member_required
@require_http_methods(["GET", "POST"])
def dashboard(request: HttpRequest) -> HttpResponse:
    config = alert_settings()
    form = AlertSettingsForm(request.POST or None, instance=config)
    if request.method == "POST" and form.is_valid():
        form.save()
        alerts_run()
        messages.success(request, _("Alert thresholds saved and checked."))
        return redirect("ops:dashboard")
    range_name = request.GET.get("range", "24h")
    data = dashboard_data(range_name=range_name)
    labels = data.buckets.labels
    context = {
        "data": data,
        "ranges": list(RANGES),
        "form": form,
        "alerts": AlertState.objects.all(),
        "index": active_index(),
        "encryption": keyring().enabled,
        "latency_chart": charts.line_chart(
            _("Answer latency"),
            labels,
            [
                charts.Series("p50", data.p50),
                charts.Series("p95", data.p95),
                charts.Series("p99", data.p99),
            ],
            unit=" s",
        ),
        "questions_chart": charts.bar_chart(
            _("Questions"), labels, [charts.Series(_("questions"), data.questions)]
        ),
        "cache_chart": charts.line_chart(
            _("Answer cache hit rate"),
            labels,
            [charts.Series(_("hit rate"), data.cache_hit_rate)],
            unit="%",
        ),
        "ingestion_chart": charts.bar_chart(
            _("Documents ingested"),
            labels,
            [
                charts.Series(_("ready"), data.ingested),
                charts.Series(_("failed"), data.failed),
            ],
        ),
        "feedback_chart": charts.bar_chart(
            _("Feedback"),
            labels,
            [
                charts.Series(_("helpful"), data.helpful),
                charts.Series(_("not helpful"), data.unhelpful),
            ],
        ),
    }
    return render(request, "ops/dashboard.html", context)
