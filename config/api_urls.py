"""/api/v1/: the versioned REST API and its OpenAPI schema and docs."""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import SimpleRouter

from accounts.api import TokenViewSet
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

app_name = "api"

urlpatterns = [
    path("", include(router.urls)),
    path("search/", SearchAPIView.as_view(), name="search"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api:schema"), name="docs"),
]
