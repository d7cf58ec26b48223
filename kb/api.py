"""REST API for collections and grants (/api/v1/collections/...)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError as DjangoValidationError
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.exceptions import APIException
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.current import request_token, signed_in_user
from core.pagination import BoundedLimitOffsetPagination, page_of
from kb import selectors, services
from kb.models import Action, Collection, CollectionGrant, Role


class Conflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"
    default_detail = _("This conflicts with an existing object.")


def _raise_validation(exc: DjangoValidationError) -> None:
    detail = (
        exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages}
    )
    if hasattr(exc, "error_dict") and any(
        error.code == "duplicate"
        for errors in exc.error_dict.values()
        for error in errors
    ):
        # A name already taken is a conflict with existing state, not bad input.
        raise Conflict(" ".join(exc.messages))
    raise serializers.ValidationError(detail)


class CollectionOutput(serializers.ModelSerializer):
    document_count = serializers.IntegerField(read_only=True)
    role = serializers.SerializerMethodField()

    class Meta:
        model = Collection
        fields = [
            "id",
            "name",
            "description",
            "role",
            "document_count",
            "version",
            "created_at",
            "updated_at",
        ]

    def get_role(self, collection: Collection) -> str | None:
        roles: dict[int, Role] = self.context.get("roles", {})
        role = roles.get(collection.pk)
        return role.value if role else None


class CollectionInput(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(allow_blank=True, required=False, default="")


class CollectionViewSet(viewsets.ViewSet):
    """Collections you may read; managers change them and their grants."""

    lookup_value_converter = "int"

    def _context(self, collections: list[Collection]) -> dict[str, Any]:
        ids = [collection.pk for collection in collections]
        return {
            "roles": selectors.roles_for_user(
                user=self.request.user, collection_ids=ids
            )
        }

    def _present(self, pk: int, code: int = 200) -> Response:
        """The collection as the caller sees it (with their role and counts)."""
        collection = selectors.collection_list(user=signed_in_user(self.request)).get(
            pk=pk
        )
        body = CollectionOutput(collection, context=self._context([collection])).data
        return Response(body, status=code)

    def _get(self, pk: str, action: Action) -> Collection:
        return selectors.collection_for_action(
            self.request.user, pk, action, token=request_token(self.request)
        )

    @extend_schema(responses=page_of(CollectionOutput, "PaginatedCollectionOutputList"))
    def list(self, request: Request) -> Response:
        queryset = selectors.collection_list(
            user=request.user, token=request_token(request)
        )
        # One paginator per request: it keeps the request's state.
        paginator = BoundedLimitOffsetPagination()
        page = paginator.paginate_queryset(queryset, request, view=self) or []
        serialized = CollectionOutput(page, many=True, context=self._context(page))
        return paginator.get_paginated_response(serialized.data)

    @extend_schema(request=CollectionInput, responses={201: CollectionOutput})
    def create(self, request: Request) -> Response:
        token = request_token(request)
        if token is not None and token.collection_scoped:
            return Response(
                {"detail": "A token limited to collections cannot create collections."},
                status=status.HTTP_403_FORBIDDEN,
            )
        data = CollectionInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            collection = services.collection_create(
                creator=signed_in_user(request), request=request, **data.validated_data
            )
        except DjangoValidationError as exc:
            _raise_validation(exc)
        except (
            PermissionError
        ) as exc:  # pragma: no cover - PermissionDenied handled by DRF
            raise exc
        return self._present(collection.pk, code=201)

    @extend_schema(responses=CollectionOutput)
    def retrieve(self, request: Request, pk: str) -> Response:
        collection = self._get(pk, Action.VIEW)
        return self._present(collection.pk)

    @extend_schema(request=CollectionInput, responses=CollectionOutput)
    def partial_update(self, request: Request, pk: str) -> Response:
        collection = self._get(pk, Action.MANAGE)
        data = CollectionInput(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        try:
            services.collection_update(
                collection=collection,
                actor=signed_in_user(request),
                request=request,
                **data.validated_data,
            )
        except DjangoValidationError as exc:
            _raise_validation(exc)
        return self._present(collection.pk)

    @extend_schema(request=CollectionInput, responses=CollectionOutput)
    def update(self, request: Request, pk: str) -> Response:
        return self.partial_update(request, pk)

    @extend_schema(responses={204: None})
    def destroy(self, request: Request, pk: str) -> Response:
        collection = self._get(pk, Action.MANAGE)
        services.collection_delete(
            collection=collection, actor=signed_in_user(request), request=request
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class GrantOutput(serializers.ModelSerializer):
    username = serializers.CharField(
        source="user.username", read_only=True, default=None, allow_null=True
    )
    group = serializers.CharField(
        source="group.name", read_only=True, default=None, allow_null=True
    )

    class Meta:
        model = CollectionGrant
        fields = ["id", "username", "group", "role", "created_at"]


class GrantInput(serializers.Serializer):
    username = serializers.CharField(required=False, max_length=150)
    group = serializers.CharField(required=False, max_length=150)
    role = serializers.ChoiceField(choices=Role.choices)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if bool(attrs.get("username")) == bool(attrs.get("group")):
            raise serializers.ValidationError(_("Give either username or group."))
        if attrs.get("username"):
            user = (
                get_user_model()
                .objects.filter(username=attrs["username"], is_active=True)
                .first()
            )
            if user is None:
                raise serializers.ValidationError(
                    {"username": _("No active user has this username.")}
                )
            return {"user": user, "role": attrs["role"]}
        group = Group.objects.filter(name=attrs["group"]).first()
        if group is None:
            raise serializers.ValidationError({"group": _("No group has this name.")})
        return {"group": group, "role": attrs["role"]}


class GrantRoleInput(serializers.Serializer):
    role = serializers.ChoiceField(choices=Role.choices)


class GrantViewSet(viewsets.ViewSet):
    """Grants of one collection; managers only (others: 404 or 403)."""

    lookup_value_converter = "int"

    def _collection(self) -> Collection:
        return selectors.collection_for_action(
            self.request.user,
            self.kwargs["collection_pk"],
            Action.MANAGE,
            token=request_token(self.request),
        )

    @extend_schema(responses=GrantOutput(many=True))
    def list(self, request: Request, collection_pk: str) -> Response:
        collection = self._collection()
        return Response(
            GrantOutput(selectors.grant_list(collection=collection), many=True).data
        )

    @extend_schema(request=GrantInput, responses={201: GrantOutput})
    def create(self, request: Request, collection_pk: str) -> Response:
        collection = self._collection()
        data = GrantInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            grant = services.grant_set(
                collection=collection,
                actor=signed_in_user(request),
                request=request,
                **data.validated_data,
            )
        except DjangoValidationError as exc:
            _raise_validation(exc)
        return Response(GrantOutput(grant).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=GrantRoleInput, responses=GrantOutput)
    def partial_update(self, request: Request, collection_pk: str, pk: str) -> Response:
        collection = self._collection()
        grant = get_object_or_404(CollectionGrant, pk=pk, collection=collection)
        data = GrantRoleInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            grant = services.grant_set(
                collection=collection,
                role=data.validated_data["role"],
                actor=signed_in_user(request),
                user=grant.user,
                group=grant.group,
                request=request,
            )
        except DjangoValidationError as exc:
            _raise_validation(exc)
        return Response(GrantOutput(grant).data)

    @extend_schema(responses={204: None})
    def destroy(self, request: Request, collection_pk: str, pk: str) -> Response:
        collection = self._collection()
        grant = get_object_or_404(CollectionGrant, pk=pk, collection=collection)
        try:
            services.grant_revoke(
                grant=grant, actor=signed_in_user(request), request=request
            )
        except DjangoValidationError as exc:
            _raise_validation(exc)
        return Response(status=status.HTTP_204_NO_CONTENT)
