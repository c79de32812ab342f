from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from voicebot import views

admin.site.site_header = "Voicebot"
admin.site.site_title = "Voicebot admin"
admin.site.index_title = "Companies, bots and calls"

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="admin:index", permanent=False)),
    path("healthz", views.healthz, name="healthz"),
    path("api/v1/", include("voicebot.api.urls")),
    path("api/v1/", include("campaigns.urls")),  # the campaigns app's API, beside the core one
    path("admin/try-bot/", include("pipelines.urls")),  # scenarios: "Try this bot" text chat
    path("admin/", admin.site.urls),
]
