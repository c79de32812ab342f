"""/api/v1/ resources of the core app; the other apps' are in their api_urls.py."""

from rest_framework.routers import SimpleRouter

from voicebot.api import bots, calls, companies, numbers

router = SimpleRouter()
router.register("companies", companies.CompanyViewSet, basename="company")
router.register("bots", bots.BotViewSet, basename="bot")
router.register("tools", bots.BotToolViewSet, basename="tool")
router.register("phone-numbers", numbers.PhoneNumberViewSet, basename="phonenumber")
router.register("calls", calls.CallViewSet, basename="call")

urlpatterns = router.urls
