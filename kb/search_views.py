"""The search page and the search API: thin wrappers over kb.search."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.current import request_token
from core.inputs import InputError, has_nul, parse_day, parse_ids
from kb.models import Action, Collection
from kb.search import SearchFilters, search_chunks

MAX_LIMIT = 50


class FilterError(ValueError):
    """A filter value that cannot be asked of the database."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _day(params: Any, field: str) -> dt.date | None:
    try:
        return parse_day(params.get(field, ""), field=field)
    except InputError as error:
        raise FilterError(field, str(error)) from error


def _filters(params: Any) -> SearchFilters:
    content_types = tuple(value for value in params.getlist("type") if value)
    if has_nul(*content_types):
        raise FilterError("type", _("A type filter may not contain NUL characters."))
    after = _day(params, "after")
    before = _day(params, "before")
    return SearchFilters(
        collection_ids=parse_ids(params.getlist("collection")),
        document_ids=parse_ids(params.getlist("document")),
        content_types=content_types,
        uploaded_after=dt.datetime.combine(after, dt.time.min, tzinfo=dt.UTC)
        if after
        else None,
        uploaded_before=dt.datetime.combine(before, dt.time.max, tzinfo=dt.UTC)
        if before
        else None,
    )


@login_required
@require_GET
def search_page(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "").strip()
    try:
        filters = _filters(request.GET)
    except FilterError as error:
        return HttpResponseBadRequest(str(error))
    result = (
        search_chunks(user=request.user, query=query, limit=20, filters=filters)
        if query
        else None
    )
    collections = Collection.objects.for_user(request.user, Action.VIEW).values_list(
        "pk", "name"
    )
    return render(
        request,
        "kb/search.html",
        {
            "query": query,
            "result": result,
            "collections": list(collections),
            "selected": set(filters.collection_ids),
        },
    )


class SearchHitOutput(serializers.Serializer):
    chunk_id = serializers.IntegerField()
    document_id = serializers.IntegerField()
    document_title = serializers.CharField()
    collection_id = serializers.IntegerField()
    collection_name = serializers.CharField()
    page = serializers.IntegerField(allow_null=True)
    section_title = serializers.CharField(allow_blank=True)
    text = serializers.CharField()
    snippet_html = serializers.CharField(
        help_text="The passage, HTML-escaped, matches in <mark>."
    )
    score = serializers.FloatField()
    url = serializers.CharField(help_text="The document page at this passage.")


class SearchOutput(serializers.Serializer):
    query = serializers.CharField()
    results = SearchHitOutput(many=True)
    dense_used = serializers.BooleanField()
    language_covered = serializers.BooleanField(
        help_text="False when the embedding model does not read the query's "
        "language: results then match its words only."
    )
    notice = serializers.CharField(
        allow_blank=True, help_text="What to know about these results, or empty."
    )
    timings_ms = serializers.DictField(child=serializers.FloatField())


class SearchInput(serializers.Serializer):
    q = serializers.CharField(max_length=2000)
    limit = serializers.IntegerField(min_value=1, max_value=MAX_LIMIT, default=10)


class SearchAPIView(APIView):
    """Hybrid search over the collections you (or your token) may read."""

    @extend_schema(
        parameters=[
            OpenApiParameter("q", str, required=True),
            OpenApiParameter("limit", int),
            OpenApiParameter("collection", int, many=True),
            OpenApiParameter("document", int, many=True),
            OpenApiParameter("type", str, many=True, description="Detected MIME type"),
            OpenApiParameter("after", dt.date),
            OpenApiParameter("before", dt.date),
        ],
        responses=SearchOutput,
    )
    def get(self, request: Request) -> Response:
        data = SearchInput(data=request.query_params)
        data.is_valid(raise_exception=True)
        token = request_token(request)
        try:
            filters = _filters(request.query_params)
        except FilterError as error:
            raise serializers.ValidationError({error.field: [str(error)]}) from error
        result = search_chunks(
            user=request.user,
            query=data.validated_data["q"],
            limit=data.validated_data["limit"],
            token=token,
            filters=filters,
        )
        hits = [
            {**hit.as_dict(), "snippet_html": hit.snippet_html} for hit in result.hits
        ]
        body = {
            "query": data.validated_data["q"],
            "results": hits,
            "dense_used": result.dense_used,
            "language_covered": result.language_covered,
            "notice": result.notice,
            "timings_ms": {
                key: round(value, 2) for key, value in result.timings_ms.items()
            },
        }
        # Built to SearchOutput's shape (the schema); not run through it again.
        return Response(body)
