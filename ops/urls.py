from django.urls import path

from ops import evaluation_views, views

app_name = "ops"

urlpatterns = [
    path("dashboard/", views.dashboard, name="dashboard"),
    path("dashboard/evaluations/", evaluation_views.evaluations, name="evaluations"),
    path(
        "dashboard/evaluations/<int:pk>/",
        evaluation_views.evaluation,
        name="evaluation",
    ),
]
