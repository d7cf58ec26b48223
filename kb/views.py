"""Portal pages for collections and their members. Thin: permissions come from
``Collection.objects.for_user``, writes from ``kb.services``."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.current import signed_in_user
from kb import selectors, services
from kb.forms import CollectionForm, CollectionSettingsForm, GrantForm, RoleForm
from kb.models import Action, Collection, CollectionGrant, Role
from kb.selectors import collection_for_action


def _collection(request: HttpRequest, pk: int, action: Action) -> Collection:
    """404 when the user may not see the collection; 403 when they may see it
    but not do ``action`` to it."""
    return collection_for_action(request.user, pk, action)


def _error_text(exc: ValidationError) -> str:
    return " ".join(str(message) for message in exc.messages)


@login_required
@require_http_methods(["GET", "POST"])
def collection_list(request: HttpRequest) -> HttpResponse:
    form = CollectionForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            collection = services.collection_create(
                name=form.cleaned_data["name"],
                description=form.cleaned_data["description"],
                creator=signed_in_user(request),
                request=request,
            )
        except ValidationError as exc:
            form.add_error("name", _error_text(exc))
        except PermissionDenied as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(
                request, _("Collection created. Add documents and members next.")
            )
            return redirect(collection)
    collections = list(
        selectors.collection_list(
            user=signed_in_user(request),
        )
    )
    roles = selectors.roles_for_user(
        user=signed_in_user(request), collection_ids=[c.pk for c in collections]
    )
    rows = [(collection, roles.get(collection.pk)) for collection in collections]
    return render(
        request,
        "kb/collection_list.html",
        {
            "rows": rows,
            "form": form,
            "may_create": services.user_may_create_collections(request.user),
        },
    )


@login_required
@require_GET
def collection_detail(request: HttpRequest, pk: int) -> HttpResponse:
    collection = _collection(request, pk, Action.VIEW)
    role = selectors.roles_for_user(
        user=signed_in_user(request), collection_ids=[collection.pk]
    ).get(collection.pk)
    return render(
        request,
        "kb/collection_detail.html",
        {
            "collection": collection,
            "role": role,
            "may_edit": role in {Role.EDITOR, Role.MANAGER},
            "may_manage": role == Role.MANAGER,
            **selectors.document_table(collection=collection),
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def collection_settings(request: HttpRequest, pk: int) -> HttpResponse:
    collection = _collection(request, pk, Action.MANAGE)
    form = CollectionSettingsForm(request.POST or None, instance=collection)
    if request.method == "POST" and form.is_valid():
        try:
            services.collection_update(
                collection=Collection.objects.get(pk=collection.pk),
                actor=signed_in_user(request),
                name=form.cleaned_data["name"],
                description=form.cleaned_data["description"],
                retention=(
                    form.cleaned_data["retention_action"],
                    form.cleaned_data["retention_days"],
                ),
                request=request,
            )
        except ValidationError as exc:
            form.add_error("name", _error_text(exc))
        else:
            messages.success(request, _("Settings saved."))
            return redirect("kb:collection-settings", pk=collection.pk)
    return render(
        request, "kb/collection_settings.html", {"collection": collection, "form": form}
    )


@login_required
@require_POST
def collection_delete(request: HttpRequest, pk: int) -> HttpResponse:
    collection = _collection(request, pk, Action.MANAGE)
    if request.POST.get("confirm_name") != collection.name:
        messages.error(request, _("Type the collection's name exactly to delete it."))
        return redirect("kb:collection-settings", pk=collection.pk)
    services.collection_delete(
        collection=collection, actor=signed_in_user(request), request=request
    )
    messages.success(request, _("Collection deleted with all its documents."))
    return redirect("kb:collection-list")


def _members_context(collection: Collection, form: GrantForm) -> dict[str, object]:
    return {
        "collection": collection,
        "grants": selectors.grant_list(collection=collection),
        "form": form,
        "roles": Role.choices,
    }


@login_required
@require_http_methods(["GET", "POST"])
def collection_members(request: HttpRequest, pk: int) -> HttpResponse:
    collection = _collection(request, pk, Action.MANAGE)
    form = GrantForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.grant_set(
                collection=collection,
                role=form.cleaned_data["role"],
                actor=signed_in_user(request),
                request=request,
                **form.cleaned_data["grantee"],
            )
        except ValidationError as exc:
            form.add_error(None, _error_text(exc))
        else:
            messages.success(request, _("Member saved."))
            form = GrantForm()
    template = (
        "kb/_members.html"
        if request.headers.get("HX-Request")
        else "kb/collection_members.html"
    )
    return render(request, template, _members_context(collection, form))


def _grant(
    request: HttpRequest, pk: int, grant_pk: int
) -> tuple[Collection, CollectionGrant]:
    collection = _collection(request, pk, Action.MANAGE)
    return collection, get_object_or_404(
        CollectionGrant, pk=grant_pk, collection=collection
    )


@login_required
@require_POST
def grant_update(request: HttpRequest, pk: int, grant_pk: int) -> HttpResponse:
    collection, grant = _grant(request, pk, grant_pk)
    form = RoleForm(request.POST)
    if form.is_valid():
        try:
            services.grant_set(
                collection=collection,
                role=form.cleaned_data["role"],
                actor=signed_in_user(request),
                user=grant.user,
                group=grant.group,
                request=request,
            )
        except ValidationError as exc:
            messages.error(request, _error_text(exc))
    return _members_response(request, collection)


@login_required
@require_POST
def grant_delete(request: HttpRequest, pk: int, grant_pk: int) -> HttpResponse:
    collection, grant = _grant(request, pk, grant_pk)
    try:
        services.grant_revoke(
            grant=grant, actor=signed_in_user(request), request=request
        )
    except ValidationError as exc:
        messages.error(request, _error_text(exc))
    # A manager who removed themselves can no longer see the members page.
    if (
        not Collection.objects.for_user(request.user, Action.MANAGE)
        .filter(pk=pk)
        .exists()
    ):
        response = HttpResponse(status=204)
        response["HX-Redirect"] = "/"
        return (
            response
            if request.headers.get("HX-Request")
            else redirect("kb:collection-list")
        )
    return _members_response(request, collection)


def _members_response(request: HttpRequest, collection: Collection) -> HttpResponse:
    if request.headers.get("HX-Request"):
        return render(
            request, "kb/_members.html", _members_context(collection, GrantForm())
        )
    return redirect("kb:collection-members", pk=collection.pk)
