from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from django.utils.translation import gettext_lazy as _
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from . import admin_auth, admin_scope, views

admin.site.site_header = _("Consent-first CDP")
admin.site.site_title = _("CDP admin")
admin.site.index_title = _("Members, consent and segments")
admin_auth.install(admin.site)  # the login form with the second factor (cdp/admin_auth.py)
admin_scope.install(admin.site)  # ⚑ brand wall, staff side: every admin scoped to the staff's brands

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("i18n/", include("django.conf.urls.i18n")),
    # The admin index carries the dashboard and the ledger its compliance report (insights);
    # everything else is the stock admin.
    path("admin/two-factor/", admin.site.admin_view(admin_auth.two_factor_setup), name="admin-two-factor"),
    path("admin/", include("insights.admin_urls")),
    path("admin/insights/", include("insights.urls")),
    path("admin/", admin.site.urls),
    # allauth's code page with a cooldown on "send me a new code" (privacy/signin.py).
    path("privacy/accounts/", include("privacy.account_urls")),
    path("privacy/accounts/", include("allauth.urls")),
    path("privacy/", include("privacy.urls")),
    path("privacy/", include("consent.urls")),
    path("api/v1/", include("members.api")),
    path("api/v1/", include("consent.api")),
    path("api/v1/", include("segments.api")),
    path("api/v1/", include("webhooks.api")),
    path("api/v1/", include("imports.platform_events.api")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
]

if settings.DEBUG:
    from django.contrib.staticfiles.urls import staticfiles_urlpatterns

    urlpatterns += staticfiles_urlpatterns()

handler404 = "cdp.api.errors.not_found"
handler500 = "cdp.api.errors.server_error"
