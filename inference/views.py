"""The portal's Ask pages: thin views over inference.services."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.current import signed_in_user
from core.inputs import parse_id, parse_ids
from inference import conversations, services
from inference.api import event_stream_response, sse
from inference.cache import AnswerCache, hit_rate
from inference.queue import QueueFull
from inference.selectors import (
    answer_for_user,
    conversation_for_user,
    conversations_for_user,
)
from inference.summaries import summary_request
from kb.models import Action, Collection
from kb.selectors import document_for_action


@login_required
@require_GET
def ask_page(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    conversation = conversation_for_user(request.user, pk) if pk else None
    return render(
        request,
        "inference/ask.html",
        {
            "conversation": conversation,
            "conversation_messages": conversation.messages.all()
            if conversation
            else [],
            "conversations": conversations_for_user(request.user)[:50],
            "collections": Collection.objects.for_user(request.user, Action.VIEW)
            .order_by("name")
            .values_list("pk", "name"),
        },
    )


@login_required
@require_POST
def ask_stream(request: HttpRequest) -> HttpResponseBase:
    """The answer as server-sent events, read by static/js/ask.js."""
    conversation = None
    if request.POST.get("conversation"):
        conversation_id = parse_id(request.POST["conversation"])
        if conversation_id is None:
            raise Http404
        conversation = conversation_for_user(request.user, conversation_id)
    collection_ids = parse_ids(request.POST.getlist("collection"))
    try:
        events = services.ask(
            user=signed_in_user(request),
            question=request.POST.get("question", ""),
            conversation=conversation,
            collection_ids=collection_ids,
        )
    except services.AskError as exc:
        return HttpResponseBadRequest(str(exc))
    except QueueFull as exc:
        busy = HttpResponse(str(exc), status=429, content_type="text/plain")
        busy["Retry-After"] = str(exc.retry_after)
        return busy
    return event_stream_response(request, sse(events))


@login_required
@require_POST
def conversation_rename(request: HttpRequest, pk: int) -> HttpResponse:
    conversation = conversation_for_user(request.user, pk)
    try:
        conversations.conversation_rename(
            conversation=conversation, title=request.POST.get("title", "")
        )
    except services.AskError as exc:
        messages.error(request, str(exc))
    return redirect("inference:conversation", pk=conversation.pk)


@login_required
@require_POST
def conversation_delete(request: HttpRequest, pk: int) -> HttpResponse:
    conversations.conversation_delete(
        conversation=conversation_for_user(request.user, pk)
    )
    messages.success(request, _("The conversation was deleted."))
    return redirect("inference:ask")


@login_required
@require_POST
def feedback(request: HttpRequest, pk: int) -> HttpResponse:
    message = answer_for_user(request.user, pk)
    helpful = request.POST.get("helpful") == "1"
    try:
        conversations.feedback_set(
            message=message,
            user=signed_in_user(request),
            helpful=helpful,
            comment=request.POST.get("comment", ""),
        )
    except services.AskError as exc:
        return HttpResponseBadRequest(str(exc))
    return render(
        request, "inference/_feedback.html", {"message": message, "given": helpful}
    )


@login_required
@require_POST
def document_summarize(request: HttpRequest, pk: int) -> HttpResponse:
    document = document_for_action(request.user, pk, Action.VIEW)
    summary_request(document=document)
    messages.success(
        request, _("The summary is being written; it appears here when ready.")
    )
    return redirect("ingest:document-detail", pk=document.pk)


@staff_member_required
@require_http_methods(["GET", "POST"])
def answer_cache(request: HttpRequest) -> HttpResponse:
    cache = AnswerCache()
    if request.method == "POST":
        removed = cache.purge()
        messages.success(
            request, _("Answer cache purged (%(n)d keys).") % {"n": removed}
        )
        return redirect("inference:answer-cache")
    stats = cache.stats()
    return render(
        request,
        "inference/answer_cache.html",
        {
            "stats": stats,
            "lookups": sum(stats.values()),
            "hit_rate": 100.0 * hit_rate(stats),
        },
    )
