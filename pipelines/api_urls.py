"""/api/v1/ resources of the pipelines app (see pipelines/api.py); included in voicebot/urls.py."""

urlpatterns = []
