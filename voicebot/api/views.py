from rest_framework import viewsets

from voicebot.api.scoping import CompanyScopedViewMixin
from voicebot.api.serializers import BotSerializer, CallDetailSerializer, CallSerializer, PhoneNumberSerializer
from voicebot.models import Bot, Call, PhoneNumber


class BotViewSet(CompanyScopedViewMixin, viewsets.ModelViewSet):
    queryset_model = Bot
    serializer_class = BotSerializer
    lookup_field = "slug"


class PhoneNumberViewSet(CompanyScopedViewMixin, viewsets.ModelViewSet):
    queryset_model = PhoneNumber
    serializer_class = PhoneNumberSerializer


class CallViewSet(CompanyScopedViewMixin, viewsets.ReadOnlyModelViewSet):
    """Calls are written by the call runner; the API reads them."""

    queryset_model = Call

    def get_queryset(self):
        queryset = super().get_queryset().select_related("bot")
        if self.action == "retrieve":
            queryset = queryset.prefetch_related("turns")
        bot = self.request.query_params.get("bot")
        if bot:
            queryset = queryset.filter(bot__slug=bot)
        return queryset

    def get_serializer_class(self):
        return CallDetailSerializer if self.action == "retrieve" else CallSerializer
