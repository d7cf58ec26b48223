"""REST API for documents: upload (multipart), status, download, re-ingest,
cancel and delete."""

from __future__ import annotations

from typing import Any

from django.http import FileResponse
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.current import request_token, signed_in_user
from core.pagination import BoundedLimitOffsetPagination, page_of
from ingest import documents
from ingest.views import download_response
from kb import selectors
from kb.models import Action, Document


class DocumentOutput(serializers.ModelSerializer):
    class Meta:
        model = Document
        fields = [
            "id", "collection", "title", "original_filename", "content_type", "size_bytes",
            "sha256", "status", "progress", "failure_reason", "attempts", "page_count",
            "chunk_count", "version", "created_at", "updated_at", "ingested_at",
        ]  # fmt: skip


class UploadInput(serializers.Serializer):
    files = serializers.ListField(
        # An empty file is one file's rejection (with its reason), not a
        # refusal of the whole upload.
        child=serializers.FileField(allow_empty_file=True),
        min_length=1,
        max_length=100,
    )


class UploadResultOutput(serializers.Serializer):
    filename = serializers.CharField()
    outcome = serializers.ChoiceField(choices=["queued", "duplicate", "rejected"])
    document = DocumentOutput(allow_null=True)
    duplicate_of = serializers.IntegerField(allow_null=True)
    reason = serializers.CharField(allow_blank=True)


class CollectionDocumentViewSet(viewsets.ViewSet):
    """Documents of one collection: list (viewers) and upload (editors)."""

    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(responses=page_of(DocumentOutput, "PaginatedDocumentOutputList"))
    def list(self, request: Request, collection_pk: int) -> Response:
        collection = selectors.collection_for_action(
            request.user, collection_pk, Action.VIEW, token=request_token(request)
        )
        paginator = BoundedLimitOffsetPagination()
        page = (
            paginator.paginate_queryset(
                collection.documents.order_by("-created_at"), request, view=self
            )
            or []
        )
        return paginator.get_paginated_response(DocumentOutput(page, many=True).data)

    @extend_schema(
        request={"multipart/form-data": UploadInput},
        # 201 when at least one file was queued; 200 when none was (every
        # file a duplicate or refused, each with its outcome and reason).
        responses={
            201: UploadResultOutput(many=True),
            200: UploadResultOutput(many=True),
        },
    )
    def create(self, request: Request, collection_pk: int) -> Response:
        collection = selectors.collection_for_action(
            request.user, collection_pk, Action.EDIT, token=request_token(request)
        )
        data = UploadInput(data={"files": request.FILES.getlist("files")})
        data.is_valid(raise_exception=True)
        results: list[dict[str, Any]] = []
        for uploaded in data.validated_data["files"]:
            outcome = documents.document_upload(
                collection=collection,
                uploaded=uploaded,
                uploader=signed_in_user(request),
                request=request,
            )
            results.append(
                {
                    "filename": outcome.filename,
                    "outcome": "queued"
                    if outcome.accepted
                    else ("duplicate" if outcome.duplicate_of else "rejected"),
                    "document": DocumentOutput(outcome.document).data
                    if outcome.document
                    else None,
                    "duplicate_of": outcome.duplicate_of.pk
                    if outcome.duplicate_of
                    else None,
                    "reason": outcome.rejected_reason,
                }
            )
        accepted = any(result["outcome"] == "queued" for result in results)
        return Response(
            results, status=status.HTTP_201_CREATED if accepted else status.HTTP_200_OK
        )


class DocumentViewSet(viewsets.ViewSet):
    lookup_value_converter = "int"

    def _get(self, pk: int, action_needed: Action) -> Document:
        return selectors.document_for_action(
            self.request.user, pk, action_needed, token=request_token(self.request)
        )

    @extend_schema(responses=DocumentOutput)
    def retrieve(self, request: Request, pk: int) -> Response:
        return Response(DocumentOutput(self._get(pk, Action.VIEW)).data)

    @extend_schema(responses={204: None})
    def destroy(self, request: Request, pk: int) -> Response:
        document = self._get(pk, Action.EDIT)
        documents.document_delete(
            document=document, actor=signed_in_user(request), request=request
        )
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(responses={(200, "application/octet-stream"): bytes})
    @action(detail=True, methods=["get"])
    def download(self, request: Request, pk: int) -> FileResponse:
        return download_response(request, self._get(pk, Action.VIEW))

    @extend_schema(
        request=None,
        responses={
            202: DocumentOutput,
            409: inline_serializer("Conflict", {"detail": serializers.CharField()}),
        },
    )
    @action(detail=True, methods=["post"])
    def reingest(self, request: Request, pk: int) -> Response:
        document = self._get(pk, Action.EDIT)
        if not documents.document_reingest(document=document):
            return Response(
                {"detail": _("The document is still being ingested.")},
                status=status.HTTP_409_CONFLICT,
            )
        document.refresh_from_db()
        return Response(DocumentOutput(document).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        request=None,
        responses={
            202: DocumentOutput,
            409: inline_serializer(
                "CancelConflict", {"detail": serializers.CharField()}
            ),
        },
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: int) -> Response:
        document = self._get(pk, Action.EDIT)
        if not documents.document_cancel(document=document):
            return Response(
                {"detail": _("The document is not being ingested.")},
                status=status.HTTP_409_CONFLICT,
            )
        document.refresh_from_db()
        return Response(DocumentOutput(document).data, status=status.HTTP_202_ACCEPTED)
