"""Request latency by route, for Prometheus."""

from __future__ import annotations

import time
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from core.metrics import HTTP_REQUEST_SECONDS


class RequestMetricsMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        # The route pattern, not the path: ids in paths would make a series
        # per document.
        if match is not None and match.route:
            route = match.route
        elif request.path.startswith("/" + settings.STATIC_URL.lstrip("/")):
            route = "static"  # served by WhiteNoise before URL resolution
        else:
            route = "unmatched"
        HTTP_REQUEST_SECONDS.labels(
            route=route[:120],
            method=request.method or "",
            status=f"{response.status_code // 100}xx",
        ).observe(time.perf_counter() - started)
        return response
