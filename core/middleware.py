"""Refuse requests whose query string or form fields hold a NUL character.

PostgreSQL text cannot store NUL, and no browser form sends one; without
this guard such a value reached the database and became a 500.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.utils.translation import gettext as _

from core.api_errors import OPENAI_PREFIX, error_body, openai_error_body
from core.inputs import has_nul

API_PREFIX = "/api/"

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


class RejectNulMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not self._holds_nul(request):
            return self.get_response(request)
        message = _("The request contains a NUL character, which no field may hold.")
        if request.path.startswith(OPENAI_PREFIX):
            body = openai_error_body(message, "invalid_request_error", "invalid_value")
            return JsonResponse(body, status=400)
        if request.path.startswith(API_PREFIX):
            return JsonResponse(error_body("invalid", message), status=400)
        return HttpResponseBadRequest(message, content_type="text/plain; charset=utf-8")

    @staticmethod
    def _holds_nul(request: HttpRequest) -> bool:
        fields = [request.GET]
        if request.method == "POST" and request.content_type in FORM_TYPES:
            fields.append(request.POST)
        return has_nul(request.path) or any(
            has_nul(key, *values) for form in fields for key, values in form.lists()
        )
