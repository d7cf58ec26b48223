"""The staff pages of the built-in evaluation, under the dashboard: start a
run of a question set as a chosen user, watch its progress, read its figures
and answers, and compare it with another run."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods

from accounts.models import User
from inference.evaluation.compare import compare_metrics
from inference.evaluation.metrics import LATENCY_METRICS
from inference.evaluation.runner import run_create
from inference.evaluation.sets import QuestionSetError, parse_question_set
from inference.models import EvaluationRun
from inference.tasks import evaluation_run
from kb.models import Action, Collection

MAX_SET_BYTES = 5 * 1024 * 1024
RESULTS_SHOWN = 300


class EvaluationForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Name"), max_length=200)
    questions = forms.FileField(
        label=gettext_lazy("Question set (JSONL or CSV)"),
        help_text=gettext_lazy(
            "One question a line: question, answers (optional), documents "
            "(optional), answerable (yes or no)."
        ),
    )
    asker = forms.ModelChoiceField(
        label=gettext_lazy("Ask as"),
        queryset=User.objects.filter(is_active=True).order_by("username"),
        help_text=gettext_lazy("The run sees only what this user may read."),
    )
    collections = forms.ModelMultipleChoiceField(
        label=gettext_lazy("Collections"),
        queryset=Collection.objects.order_by("name"),
        required=False,
        help_text=gettext_lazy("None chosen: every collection the user may read."),
    )
    overhead_sample = forms.IntegerField(
        label=gettext_lazy("Questions also timed on the LLM server alone"),
        min_value=0,
        max_value=1000,
        initial=0,
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        upload = data.get("questions")
        if upload is not None:
            if upload.size > MAX_SET_BYTES:
                self.add_error("questions", _("A question set may be at most 5 MB."))
            else:
                try:
                    data["parsed"] = parse_question_set(upload.read(), upload.name)
                except QuestionSetError as exc:
                    self.add_error("questions", str(exc))
        asker, chosen = data.get("asker"), data.get("collections")
        if asker is not None and chosen:
            readable = set(
                Collection.objects.for_user(asker, Action.VIEW).values_list(
                    "pk", flat=True
                )
            )
            hidden = [c.name for c in chosen if c.pk not in readable]
            if hidden:
                self.add_error(
                    "collections",
                    _("%(user)s may not read: %(names)s")
                    % {"user": asker.username, "names": ", ".join(hidden)},
                )
        return data


@staff_member_required
@require_http_methods(["GET", "POST"])
def evaluations(request: HttpRequest) -> HttpResponse:
    form = EvaluationForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        with transaction.atomic():
            run = run_create(
                name=data["name"],
                question_set=data["questions"].name,
                questions=data["parsed"],
                asker=data["asker"],
                collection_ids=[c.pk for c in data["collections"]],
                created_by=request.user if isinstance(request.user, User) else None,
                overhead_sample=data["overhead_sample"],
            )
            transaction.on_commit(lambda: evaluation_run.delay(run.pk))
        messages.success(request, _("The run has started."))
        return redirect("ops:evaluation", pk=run.pk)
    return render(
        request,
        "ops/evaluations.html",
        {"form": form, "runs": EvaluationRun.objects.select_related("asker")[:100]},
    )


@staff_member_required
@require_GET
def evaluation(request: HttpRequest, pk: int) -> HttpResponse:
    run = get_object_or_404(EvaluationRun.objects.select_related("asker"), pk=pk)
    if request.headers.get("HX-Request") and request.GET.get("part") == "progress":
        return render(request, "ops/_evaluation_progress.html", {"run": run})
    others = EvaluationRun.objects.filter(status=EvaluationRun.Status.COMPLETE).exclude(
        pk=run.pk
    )
    baseline_id = request.GET.get("baseline", "")
    baseline = (
        others.filter(pk=int(baseline_id)).first()
        if baseline_id.isascii() and baseline_id.isdigit()
        else None
    )
    changes = (
        compare_metrics(baseline.metrics, run.metrics) if baseline is not None else []
    )
    return render(
        request,
        "ops/evaluation_detail.html",
        {
            "run": run,
            "metrics": sorted(run.metrics.items()),
            "others": others[:100],
            "baseline": baseline,
            "changes": [(change, change.name in LATENCY_METRICS) for change in changes],
            "results": run.results.all()[:RESULTS_SHOWN],
            "collections": Collection.objects.filter(pk__in=run.collection_ids),
        },
    )
