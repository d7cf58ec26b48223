"""/api/v1/: the versioned REST API and its OpenAPI schema and docs."""

from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import SimpleRouter

from accounts.api import TokenViewSet
from core.api_errors import api_not_found
from inference.api import (
    AnswerCacheAPIView,
    AskAPIView,
    ConversationViewSet,
    DocumentSummaryAPIView,
    FeedbackAPIView,
)
from ingest.api import CollectionDocumentViewSet, DocumentViewSet
from kb.api import CollectionViewSet, GrantViewSet
from kb.search_views import SearchAPIView

router = SimpleRouter(use_regex_path=False)
router.register("collections", CollectionViewSet, basename="collection")
router.register(
    "collections/<int:collection_pk>/grants", GrantViewSet, basename="grant"
)
router.register(
    "collections/<int:collection_pk>/documents",
    CollectionDocumentViewSet,
    basename="collection-document",
)
router.register("documents", DocumentViewSet, basename="document")
router.register("tokens", TokenViewSet, basename="token")
router.register("conversations", ConversationViewSet, basename="conversation")

app_name = "api"

urlpatterns = [
    path("", include(router.urls)),
    path("search/", SearchAPIView.as_view(), name="search"),
    path("ask/", AskAPIView.as_view(), name="ask"),
    path(
        "documents/<int:pk>/summary/",
        DocumentSummaryAPIView.as_view(),
        name="document-summary",
    ),
    path("answers/<int:pk>/feedback/", FeedbackAPIView.as_view(), name="feedback"),
    path("admin/answer-cache/", AnswerCacheAPIView.as_view(), name="answer-cache"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path(
        "docs/", SpectacularSwaggerSplitView.as_view(url_name="api:schema"), name="docs"
    ),
    # Anything else under /api/v1/ (a negative id, a typo): a JSON 404.
    re_path(r"^(?P<unmatched>.*)$", api_not_found, name="not-found"),
]
