"""/api/v1/ resources of the postcall app (see postcall/api.py); included in voicebot/urls.py."""

from rest_framework.routers import SimpleRouter

from postcall import api

router = SimpleRouter()
router.register("outcomes", api.OutcomeViewSet, basename="outcome")
router.register("bookings", api.BookingViewSet, basename="booking")
router.register("leads", api.LeadViewSet, basename="lead")
router.register("webhook-endpoints", api.WebhookEndpointViewSet, basename="webhookendpoint")
router.register("webhook-deliveries", api.WebhookDeliveryViewSet, basename="webhookdelivery")
router.register("report-schedules", api.ReportScheduleViewSet, basename="reportschedule")
router.register("reports", api.ReportViewSet, basename="report")

urlpatterns = router.urls
