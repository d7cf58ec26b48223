from django.urls import path

from accounts import signin_views, views

app_name = "accounts"

urlpatterns = [
    path("profile/", views.profile, name="profile"),
    path("tokens/", views.tokens, name="tokens"),
    path("tokens/<int:pk>/revoke/", views.token_revoke_view, name="token-revoke"),
    path("oidc/login/", signin_views.oidc_login, name="oidc-login"),
    path("oidc/callback/", signin_views.oidc_callback, name="oidc-callback"),
]
