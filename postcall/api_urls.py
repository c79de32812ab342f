"""/api/v1/ resources of the postcall app (see postcall/api.py); included in voicebot/urls.py."""

urlpatterns = []
