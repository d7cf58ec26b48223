"""One shape for every API error, and that shape in the OpenAPI schema.

Body: ``{"code": "not_found", "message": "No such document.", "detail": ...,
"fields": {"name": ["This field is required."]}}``. ``detail`` repeats the
message for clients written against DRF's default; ``fields`` comes with
validation errors only. Every operation documents 400, 401, 403, 404, 405
and 429 with it (429 comes with ``Retry-After``).
"""

from __future__ import annotations

from typing import Any

from django.http import JsonResponse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler

ERROR_SCHEMA = {
    "type": "object",
    "properties": {
        "code": {"type": "string"},
        "message": {"type": "string"},
        "detail": {},
        "fields": {
            "type": "object",
            "additionalProperties": {},
        },
    },
    "required": ["code", "message"],
}
ERROR_STATUSES = {
    "400": "The request is invalid; `fields` says which fields and why.",
    "401": "No valid credentials (a session or an `Authorization: Bearer` token).",
    "403": "Your role, or your token's limits, do not allow this.",
    "404": "Not found, or not visible to you.",
    "405": "This method is not allowed here.",
    "409": "This conflicts with existing data (e.g. a name already taken).",
    "429": "Too many requests for this token; retry after `Retry-After` seconds.",
}


STATUS_CODES = {403: "permission_denied", 404: "not_found"}
OPENAI_PREFIX = "/v1/"


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    """Archivist's error body (``detail`` repeats the message for DRF clients)."""
    return {"code": code, "message": message, "detail": message, **extra}


def openai_error_body(message: str, kind: str, code: str) -> dict[str, Any]:
    """OpenAI's error body, which its client libraries parse."""
    return {"error": {"message": message, "type": kind, "code": code, "param": None}}


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    response = exception_handler(exc, context)
    if response is None:
        return None
    request = context.get("request")
    if request is not None and request.path.startswith(OPENAI_PREFIX):
        return _openai_shaped(response)
    if isinstance(exc, exceptions.ValidationError):
        fields = (
            exc.detail
            if isinstance(exc.detail, dict)
            else {"non_field_errors": exc.detail}
        )
        response.data = error_body(
            "invalid", _("The request has invalid fields."), fields=fields
        )
        return response
    if isinstance(exc, exceptions.APIException):
        codes = exc.get_codes()
        code = str(codes if isinstance(codes, str) else exc.default_code)
    else:  # Django's Http404 and PermissionDenied, converted by DRF
        code = STATUS_CODES.get(response.status_code, "error")
    detail = response.data.get("detail") if isinstance(response.data, dict) else None
    message = str(detail) if detail is not None else str(response.data)
    response.data = error_body(code, message)
    return response


OPENAI_ERROR_SCHEMA = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "code": {"type": "string", "nullable": True},
                "param": {"type": "string", "nullable": True},
            },
            "required": ["message", "type"],
        }
    },
    "required": ["error"],
}


def _openai_shaped(response: Response) -> Response:
    data = response.data
    message = (
        data.get("detail") if isinstance(data, dict) and "detail" in data else data
    )
    kind = "invalid_request_error" if response.status_code < 500 else "server_error"
    if response.status_code == 401:
        kind = "authentication_error"
    elif response.status_code == 429:
        kind = "rate_limit_error"
    response.data = openai_error_body(
        message if isinstance(message, str) else str(message),
        kind,
        str(getattr(message, "code", "") or response.status_code),
    )
    return response


@csrf_exempt  # it changes nothing; a POST to a wrong address still gets a JSON 404
def api_not_found(request: Any, unmatched: str = "") -> JsonResponse:
    """Unknown /api/ and /v1/ addresses: a JSON 404, not the portal's page."""
    message = _("No such API endpoint.")
    if request.path.startswith(OPENAI_PREFIX):
        body = openai_error_body(message, "invalid_request_error", "not_found")
    else:
        body = error_body("not_found", message)
    return JsonResponse(body, status=404)


def document_errors(
    result: dict[str, Any], generator: Any, request: Any, public: bool
) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: the error responses of every operation."""
    components = result.setdefault("components", {}).setdefault("schemas", {})
    components["Error"] = ERROR_SCHEMA
    components["OpenAIError"] = OPENAI_ERROR_SCHEMA
    for path, path_item in result.get("paths", {}).items():
        name = "OpenAIError" if path.startswith(OPENAI_PREFIX) else "Error"
        reference = {"$ref": f"#/components/schemas/{name}"}
        for operation in path_item.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            for status, description in ERROR_STATUSES.items():
                operation["responses"].setdefault(
                    status,
                    {
                        "description": description,
                        "content": {"application/json": {"schema": reference}},
                    },
                )
    return result
