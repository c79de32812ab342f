from rest_framework import mixins, status, viewsets
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from voicebot.api.scoping import CompanyScopedViewMixin
from voicebot.api.serializers import (
    BotSerializer,
    CallDetailSerializer,
    CallSerializer,
    PhoneNumberSerializer,
    PlaceCallSerializer,
)
from voicebot.models import Bot, Call, PhoneNumber
from voicebot.outbound_calls import CallRequestError, request_call


class BotViewSet(CompanyScopedViewMixin, viewsets.ModelViewSet):
    queryset_model = Bot
    serializer_class = BotSerializer
    lookup_field = "slug"


class PhoneNumberViewSet(CompanyScopedViewMixin, viewsets.ModelViewSet):
    queryset_model = PhoneNumber
    serializer_class = PhoneNumberSerializer


class CallViewSet(CompanyScopedViewMixin, mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Calls are written by the call runner; the API reads them, and places outbound ones (``create``)."""

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
        if self.action == "create":
            return PlaceCallSerializer
        return CallDetailSerializer if self.action == "retrieve" else CallSerializer

    def create(self, request, *args, **kwargs):
        """Place a call: 201 with the queued call; 400 naming the field that was wrong."""
        form = self.get_serializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        try:
            call = request_call(bot=data["bot"], to=data["to"], from_number=data["from"], variables=data["variables"])
        except CallRequestError as exc:
            raise ValidationError({exc.field: [str(exc)]}) from None
        return Response(CallSerializer(call).data, status=status.HTTP_201_CREATED)
