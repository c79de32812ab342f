"""/api/v1/ resources of the knowledge app (see knowledge/api.py); included in voicebot/urls.py."""

urlpatterns = []
