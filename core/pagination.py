from typing import Any

from drf_spectacular.utils import extend_schema_serializer
from rest_framework import serializers
from rest_framework.pagination import LimitOffsetPagination


class BoundedLimitOffsetPagination(LimitOffsetPagination):
    """``?limit=`` and ``?offset=``, 50 by default, never more than 200 a page."""

    default_limit = 50
    max_limit = 200


def page_of(item_serializer: type[serializers.Serializer[Any]], name: str) -> Any:
    """The schema of one page of a list, for views that paginate by hand
    (``many=False``: the page is one object, not a list of pages)."""
    page = type(
        name,
        (serializers.Serializer,),
        {
            "count": serializers.IntegerField(),
            "next": serializers.URLField(allow_null=True),
            "previous": serializers.URLField(allow_null=True),
            "results": item_serializer(many=True),
        },
    )
    return extend_schema_serializer(many=False)(page)
