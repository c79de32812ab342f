"""/api/v1/campaigns/ (included beside voicebot's API in voicebot/urls.py)."""

from rest_framework.routers import SimpleRouter

from campaigns.api import CampaignViewSet

router = SimpleRouter()
router.register("campaigns", CampaignViewSet, basename="campaign")

urlpatterns = router.urls
