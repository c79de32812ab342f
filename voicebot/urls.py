from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path, re_path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from voicebot import views
from voicebot.api.errors import not_found as api_not_found

admin.site.site_header = "Voicebot"
admin.site.site_title = "Voicebot admin"
admin.site.index_title = "Companies, bots and calls"

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="admin:index", permanent=False)),
    path("healthz", views.healthz, name="healthz"),
    # Browsers ask every page for one: a real icon rather than a 404 line per page in the log.
    path("favicon.ico", RedirectView.as_view(url=static("voicebot/favicon.svg"), permanent=True)),
    # The REST API: each app's resources beside the core ones, one schema and docs page for all.
    path("api/v1/", include("voicebot.api.urls")),
    path("api/v1/", include("knowledge.api_urls")),
    path("api/v1/", include("postcall.api_urls")),
    path("api/v1/", include("pipelines.api_urls")),
    path("api/v1/", include("campaigns.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    re_path(r"^api/", api_not_found),
    path("admin/try-bot/", include("pipelines.urls")),  # scenarios: "Try this bot" text chat
    path("admin/", admin.site.urls),
]
