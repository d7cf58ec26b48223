from django.urls import path

from ops import views

app_name = "ops"

urlpatterns = [
    path("dashboard/", views.dashboard, name="dashboard"),
]
