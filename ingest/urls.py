from django.urls import path

from ingest import views

app_name = "ingest"

urlpatterns = [
    path(
        "collections/<int:pk>/documents/", views.document_table, name="document-table"
    ),
    path("collections/<int:pk>/upload/", views.document_upload, name="document-upload"),
    path("documents/<int:pk>/", views.document_detail, name="document-detail"),
    path(
        "documents/<int:pk>/download/",
        views.document_download,
        name="document-download",
    ),
    path("documents/<int:pk>/delete/", views.document_delete, name="document-delete"),
    path(
        "documents/<int:pk>/replace/", views.document_replace, name="document-replace"
    ),
    path(
        "documents/<int:pk>/retry/",
        views.document_action,
        {"action": "retry"},
        name="document-retry",
    ),
    path(
        "documents/<int:pk>/cancel/",
        views.document_action,
        {"action": "cancel"},
        name="document-cancel",
    ),
    path(
        "documents/<int:pk>/reingest/",
        views.document_action,
        {"action": "reingest"},
        name="document-reingest",
    ),
]
