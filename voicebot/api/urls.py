from rest_framework.routers import DefaultRouter

from voicebot.api import views

router = DefaultRouter()
router.register("bots", views.BotViewSet, basename="bot")
router.register("phone-numbers", views.PhoneNumberViewSet, basename="phonenumber")
router.register("calls", views.CallViewSet, basename="call")

urlpatterns = router.urls
