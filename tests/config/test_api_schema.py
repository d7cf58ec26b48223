"""The OpenAPI schema is valid and complete (no warnings)."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command


@pytest.mark.django_db
def test_schema_validates_without_warnings() -> None:
    out = StringIO()
    call_command("spectacular", "--validate", "--fail-on-warn", stdout=out)
    schema = out.getvalue()
    assert "/api/v1/collections/" in schema
    assert "/api/v1/documents/{id}/download/" in schema
    assert "bearerAuth" in schema
