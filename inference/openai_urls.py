"""/v1/: the OpenAI-compatible endpoints (see inference.openai_api)."""

from django.urls import path

from inference.openai_api import ChatCompletionsView, ModelsView

app_name = "openai"

urlpatterns = [
    path("models", ModelsView.as_view(), name="models"),
    path("chat/completions", ChatCompletionsView.as_view(), name="chat-completions"),
]
