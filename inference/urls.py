from django.urls import path

from inference import views

app_name = "inference"

urlpatterns = [
    path("", views.ask_page, name="ask"),
    path("ask/stream/", views.ask_stream, name="ask-stream"),
    path("ask/<int:pk>/", views.ask_page, name="conversation"),
    path("ask/<int:pk>/rename/", views.conversation_rename, name="conversation-rename"),
    path("ask/<int:pk>/delete/", views.conversation_delete, name="conversation-delete"),
    path("answers/<int:pk>/feedback/", views.feedback, name="feedback"),
    path("answer-cache/", views.answer_cache, name="answer-cache"),
    path(
        "documents/<int:pk>/summarize/",
        views.document_summarize,
        name="document-summarize",
    ),
]
