"""REST API for the caller's own API tokens (/api/v1/tokens/)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.current import signed_in_user
from accounts.models import ApiToken
from accounts.permissions import ReadOnlyTokenPermission, SessionOrUnscopedToken
from accounts.services import token_create, token_revoke


class TokenOutput(serializers.ModelSerializer):
    collections: serializers.PrimaryKeyRelatedField[Any] = (
        serializers.PrimaryKeyRelatedField(many=True, read_only=True)
    )

    class Meta:
        model = ApiToken
        fields = [
            "id", "name", "prefix", "read_only", "collection_scoped", "collections",
            "created_at", "expires_at", "last_used_at", "revoked_at",
        ]  # fmt: skip


class IssuedTokenOutput(TokenOutput):
    token = serializers.CharField(
        help_text="The token itself. Shown this once; store it now."
    )

    class Meta(TokenOutput.Meta):
        fields = [*TokenOutput.Meta.fields, "token"]


class TokenInput(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    read_only = serializers.BooleanField(default=False)  # type: ignore[assignment]
    expires_at = serializers.DateTimeField(
        required=False, allow_null=True, default=None
    )
    collections = serializers.ListField(
        child=serializers.IntegerField(min_value=1),
        required=False,
        default=list,
        max_length=1000,
    )


class TokenViewSet(viewsets.ViewSet):
    lookup_value_converter = "int"
    permission_classes = [
        IsAuthenticated,
        ReadOnlyTokenPermission,
        SessionOrUnscopedToken,
    ]

    @extend_schema(responses=TokenOutput(many=True))
    def list(self, request: Request) -> Response:
        tokens = ApiToken.objects.filter(
            user=signed_in_user(request),
        ).prefetch_related("collections")
        return Response(TokenOutput(tokens, many=True).data)

    @extend_schema(request=TokenInput, responses={201: IssuedTokenOutput})
    def create(self, request: Request) -> Response:
        data = TokenInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            issued = token_create(
                user=signed_in_user(request),
                name=data.validated_data["name"],
                read_only=data.validated_data["read_only"],
                expires_at=data.validated_data["expires_at"],
                collection_ids=data.validated_data["collections"],
                request=request,
            )
        except DjangoValidationError as exc:
            raise serializers.ValidationError({"collections": exc.messages}) from exc
        body: dict[str, Any] = {
            **TokenOutput(issued.token).data,
            "token": issued.plaintext,
        }
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(responses={204: None})
    def destroy(self, request: Request, pk: str) -> Response:
        token = get_object_or_404(
            ApiToken,
            pk=pk,
            user=signed_in_user(request),
        )
        token_revoke(token=token, actor=signed_in_user(request), request=request)
        return Response(status=status.HTTP_204_NO_CONTENT)
