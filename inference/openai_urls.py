"""/v1/: the OpenAI-compatible endpoints (see inference.openai_api)."""

from django.urls import path, re_path

from core.api_errors import api_not_found
from inference.openai_api import ChatCompletionsView, ModelsView

app_name = "openai"

urlpatterns = [
    path("models", ModelsView.as_view(), name="models"),
    path("chat/completions", ChatCompletionsView.as_view(), name="chat-completions"),
    re_path(r"^(?P<unmatched>.*)$", api_not_found, name="not-found"),
]
