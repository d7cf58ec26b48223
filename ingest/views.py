"""Portal pages for documents: upload, progress, detail, download and the
actions on a document. Permissions come from kb's selectors."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from accounts.current import signed_in_user
from accounts.models import AuditEvent
from accounts.services import audit_record
from core.inputs import parse_id, safe_next
from ingest import documents
from ingest.files import open_original
from kb import selectors
from kb.models import Action, Collection, Document, Role


def _is_htmx(request: HttpRequest) -> bool:
    return request.headers.get("HX-Request") == "true"


def _table_context(request: HttpRequest, collection: Collection) -> dict[str, object]:
    role = selectors.roles_for_user(
        user=request.user, collection_ids=[collection.pk]
    ).get(collection.pk)
    return {
        "collection": collection,
        "may_edit": role in {Role.EDITOR, Role.MANAGER},
        **selectors.document_table(collection=collection),
    }


@login_required
@require_GET
def document_table(request: HttpRequest, pk: int) -> HttpResponse:
    """The collection's documents with live progress (polled by htmx)."""
    collection = selectors.collection_for_action(request.user, pk, Action.VIEW)
    return render(
        request, "ingest/_document_table.html", _table_context(request, collection)
    )


@login_required
@require_POST
def document_upload(request: HttpRequest, pk: int) -> HttpResponse:
    collection = selectors.collection_for_action(request.user, pk, Action.EDIT)
    files = request.FILES.getlist("files")
    if not files:
        messages.error(request, _("Choose one or more files to upload."))
    for uploaded in files:
        outcome = documents.document_upload(
            collection=collection,
            uploaded=uploaded,
            uploader=signed_in_user(request),
            request=request,
        )
        if outcome.duplicate_of is not None:
            messages.warning(
                request,
                _(
                    "%(name)s is already in this collection as “%(title)s”; it was not added again."
                )
                % {"name": outcome.filename, "title": outcome.duplicate_of.title},
            )
        elif outcome.rejected_reason:
            messages.error(request, f"{outcome.filename}: {outcome.rejected_reason}")
        else:
            messages.success(
                request,
                _("%(name)s uploaded; ingestion queued.") % {"name": outcome.filename},
            )
    if _is_htmx(request):
        return render(
            request, "ingest/_document_table.html", _table_context(request, collection)
        )
    return redirect(collection)


@login_required
@require_GET
def document_detail(request: HttpRequest, pk: int) -> HttpResponse:
    document = selectors.document_for_action(request.user, pk, Action.VIEW)
    role = selectors.roles_for_user(
        user=request.user, collection_ids=[document.collection_id]
    ).get(document.collection_id)
    highlight = request.GET.get("chunk", "")
    context = {
        "document": document,
        "pages": selectors.document_pages(document=document)
        if document.status == Document.Status.READY
        else [],
        "highlight": parse_id(highlight),
        "may_edit": role in {Role.EDITOR, Role.MANAGER},
    }
    template = (
        "ingest/_document_status.html"
        if _is_htmx(request)
        else "ingest/document_detail.html"
    )
    return render(request, template, context)


@login_required
@require_GET
def document_download(request: HttpRequest, pk: int) -> FileResponse:
    document = selectors.document_for_action(request.user, pk, Action.VIEW)
    return download_response(request, document)


def download_response(request: HttpRequest, document: Document) -> FileResponse:
    """The original as an attachment, audited; for the portal and the API."""
    audit_record(
        action=AuditEvent.Action.DOCUMENT_DOWNLOADED,
        actor=request.user,
        target=document,
        request=request,
    )
    response = FileResponse(
        open_original(document), as_attachment=True, filename=document.original_filename
    )
    # Never let a browser render an uploaded file as a page of ours.
    response["Content-Type"] = "application/octet-stream"
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


@login_required
@require_POST
def document_delete(request: HttpRequest, pk: int) -> HttpResponse:
    document = selectors.document_for_action(request.user, pk, Action.EDIT)
    collection = document.collection
    documents.document_delete(
        document=document, actor=signed_in_user(request), request=request
    )
    messages.success(
        request, _("Document deleted, with its text, search index and cached answers.")
    )
    if _is_htmx(request):
        return render(
            request, "ingest/_document_table.html", _table_context(request, collection)
        )
    return redirect(collection)


@login_required
@require_POST
def document_action(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    """Retry, cancel or re-ingest."""
    document = selectors.document_for_action(request.user, pk, Action.EDIT)
    handlers = {
        "retry": (
            documents.document_retry,
            _("Queued again."),
            _("Only failed or cancelled documents can be retried."),
        ),
        "cancel": (
            documents.document_cancel,
            _("Cancelled."),
            _("This document is not being ingested."),
        ),
        "reingest": (
            documents.document_reingest,
            _("Queued for re-ingestion."),
            _("Wait until the current ingestion ends."),
        ),
    }
    handler, done, refused = handlers[action]
    if handler(document=document):
        messages.success(request, done)
    else:
        messages.warning(request, refused)
    if _is_htmx(request):
        return render(
            request,
            "ingest/_document_table.html",
            _table_context(request, document.collection),
        )
    return redirect(
        safe_next(request, request.POST.get("next"), document.get_absolute_url())
    )


@login_required
@require_POST
def document_replace(request: HttpRequest, pk: int) -> HttpResponse:
    """Upload a new version: same document, chunks swapped when it is ready."""
    document = selectors.document_for_action(request.user, pk, Action.EDIT)
    uploaded = request.FILES.get("file")
    if uploaded is None:
        messages.error(request, _("Choose the new version's file."))
        return redirect(document)
    outcome = documents.document_upload(
        collection=document.collection,
        uploaded=uploaded,
        uploader=signed_in_user(request),
        replace=document,
        request=request,
    )
    if outcome.duplicate_of is not None:
        messages.warning(request, _("This exact file is already in the collection."))
    elif outcome.rejected_reason:
        messages.error(request, outcome.rejected_reason)
    else:
        messages.success(
            request, _("New version uploaded; it replaces the old one when ready.")
        )
    return redirect(document)
