from django.contrib import admin
from django.http import HttpRequest, HttpResponsePermanentRedirect
from django.templatetags.static import static
from django.urls import include, path
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET

from accounts import signin_views
from accounts.forms import AdminSignInForm
from accounts.views import AuditedPasswordChangeView
from ops import health
from ops import views as ops_views

admin.site.site_header = _("Archivist administration")
admin.site.site_title = _("Archivist admin")
admin.site.login_form = AdminSignInForm


@require_GET
def favicon(request: HttpRequest) -> HttpResponsePermanentRedirect:
    """Browsers ask for /favicon.ico on pages that name no icon (the admin's)."""
    return HttpResponsePermanentRedirect(static("favicon.svg"))


urlpatterns = [
    path("favicon.ico", favicon, name="favicon"),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", ops_views.metrics, name="metrics"),
    path("operations/", include("ops.urls")),
    path("admin/", admin.site.urls),
    path("api/v1/", include("config.api_urls")),
    path("v1/", include("inference.openai_urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path(
        "accounts/password_change/",
        AuditedPasswordChangeView.as_view(),
        name="password_change",
    ),
    path("accounts/login/", signin_views.SignInView.as_view(), name="login"),
    path("accounts/logout/", signin_views.logout, name="logout"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("account/", include("accounts.urls")),
    path("", include("inference.urls")),
    path("", include("ingest.urls")),
    path("", include("kb.urls")),
]
