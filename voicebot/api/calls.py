"""/api/v1/calls/: calls with their transcripts; POST places an outbound call."""

from __future__ import annotations

from rest_framework import mixins, serializers, status, viewsets
from rest_framework.response import Response

from voicebot.api.errors import field_error
from voicebot.api.scoping import CompanyScopedViewMixin
from voicebot.models import Bot, Call, CallTurn, Company
from voicebot.outbound_calls import CallRequestError, request_call


class CallTurnSerializer(serializers.ModelSerializer):
    class Meta:
        model = CallTurn
        fields = ["index", "role", "text", "start_ms", "end_ms", "latency_ms", "interrupted"]


class CallSerializer(serializers.ModelSerializer):
    duration_sec = serializers.FloatField(read_only=True)

    class Meta:
        model = Call
        fields = [
            "id", "company", "bot", "external_id", "transport", "direction", "from_number", "to_number", "status",
            "started_at", "answered_at", "ended_at", "duration_sec", "end_reason", "scenario", "collected_fields",
            "variables", "metrics", "analytics",
        ]


class CallDetailSerializer(CallSerializer):
    turns = CallTurnSerializer(many=True, read_only=True)

    class Meta(CallSerializer.Meta):
        fields = CallSerializer.Meta.fields + ["turns"]


class PlaceCallSerializer(serializers.Serializer):
    """``POST /api/v1/calls/``: ``{"bot": slug, "to": number, "from": number (optional), "variables": {}}``."""

    bot = serializers.SlugRelatedField(slug_field="slug", queryset=Bot.objects.none())
    to = serializers.CharField(max_length=200)
    variables = serializers.DictField(child=serializers.CharField(allow_blank=True, max_length=2000), required=False,
                                      default=dict)

    def get_fields(self):
        fields = super().get_fields()
        fields["bot"].queryset = Bot.objects.filter(company__in=self.context.get("companies", Company.objects.none()))
        # "from" is a Python keyword: declared here so the JSON field can be called that.
        fields["from"] = serializers.CharField(max_length=32, required=False, allow_blank=True, default="")
        return fields


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
            raise field_error(exc.field, str(exc)) from None
        return Response(CallSerializer(call).data, status=status.HTTP_201_CREATED)
