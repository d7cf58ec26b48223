from django.urls import path

from kb import search_views, views

app_name = "kb"

urlpatterns = [
    path("collections/", views.collection_list, name="collection-list"),
    path("search/", search_views.search_page, name="search"),
    path("collections/<int:pk>/", views.collection_detail, name="collection-detail"),
    path(
        "collections/<int:pk>/settings/",
        views.collection_settings,
        name="collection-settings",
    ),
    path(
        "collections/<int:pk>/delete/",
        views.collection_delete,
        name="collection-delete",
    ),
    path(
        "collections/<int:pk>/members/",
        views.collection_members,
        name="collection-members",
    ),
    path(
        "collections/<int:pk>/members/<int:grant_pk>/",
        views.grant_update,
        name="grant-update",
    ),
    path(
        "collections/<int:pk>/members/<int:grant_pk>/delete/",
        views.grant_delete,
        name="grant-delete",
    ),
]
