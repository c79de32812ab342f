"""/api/v1/ resources of what happens after a call: outcomes, leads (and their CSV export), bookings,
webhook endpoints and deliveries, report schedules and reports.

Thin over the app: outcomes, leads, deliveries and reports are written by the post-call
tasks and only read here; a test event and a replay go through ``postcall.webhooks`` like the
admin's actions; a report schedule's Celery beat task follows its row (``postcall.signals``).
"""

from __future__ import annotations

import secrets

from django.http import StreamingHttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, renderers, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from postcall import exporting, webhooks
from postcall.models import (
    SUBSCRIBABLE_EVENTS,
    CallOutcome,
    Event,
    Lead,
    Period,
    Report,
    ReportSchedule,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    validate_events,
)
from voicebot import outbound
from voicebot.api.filters import apply_filters
from voicebot.api.scoping import CompanyScopedViewMixin
from voicebot.api.serializers import CompanyScopedSerializer
from voicebot.models import Call

# --- Query parameters ---------------------------------------------------------------------------

BOT_PARAM = OpenApiParameter("bot", str, description="Only this bot's (its slug).")
SINCE_CALL = OpenApiParameter("since", str, description="Calls started at or after this date (2026-12-01) or ISO "
                                                        "date-time (2026-12-01T09:00:00Z).")
UNTIL_CALL = OpenApiParameter("until", str, description="Calls started at or before this date (all of that day) or "
                                                        "ISO date-time.")
OUTCOME_PARAMS = [
    BOT_PARAM, OpenApiParameter("result", str, enum=CallOutcome.Result.values, description="Only this result."),
    SINCE_CALL, UNTIL_CALL,
]
OUTCOME_FILTERS = {"bot": "call__bot__slug", "result": "result", "since": "call__started_at__gte",
                   "until": "call__started_at__lte"}

LEAD_PARAMS = [
    OpenApiParameter("tier", str, enum=Lead.Tier.values, description="Only this tier."),
    BOT_PARAM,
    OpenApiParameter("min_score", int, description="Only leads scoring at least this."),
    OpenApiParameter("since", str, description="Leads created at or after this date (2026-12-01) or ISO date-time."),
    OpenApiParameter("until", str, description="Leads created at or before this date (all of that day) or ISO "
                                               "date-time."),
]
LEAD_FILTERS = {"tier": "tier", "bot": "bot__slug", "min_score": "score__gte", "since": "created_at__gte",
                "until": "created_at__lte"}

DELIVERY_PARAMS = [
    OpenApiParameter("endpoint", int, description="Only this webhook endpoint's deliveries (its id)."),
    OpenApiParameter("status", str, enum=WebhookDelivery.Status.values, description="Only deliveries in this state."),
    OpenApiParameter("event", str, enum=Event.values, description="Only this event."),
]
DELIVERY_FILTERS = {"endpoint": "endpoint", "status": "status", "event": "event"}

REPORT_PARAMS = [OpenApiParameter("period", str, enum=Period.values, description="Only daily or weekly reports.")]


# --- Outcomes and bookings ----------------------------------------------------------------------


class OutcomeSourcesSerializer(serializers.Serializer):
    """Where the intent and the summary came from (scenario, transcript, llm, fallback...)."""

    intent = serializers.CharField(source="intent_source", read_only=True)
    summary = serializers.CharField(source="summary_source", read_only=True)


class OutcomeSerializer(serializers.ModelSerializer):
    bot = serializers.SlugRelatedField(source="call.bot", slug_field="slug", read_only=True, allow_null=True)
    started_at = serializers.DateTimeField(source="call.started_at", read_only=True)
    sources = OutcomeSourcesSerializer(source="*", read_only=True)

    class Meta:
        model = CallOutcome
        fields = ["id", "company", "call", "bot", "started_at", "result", "intent", "summary", "fields", "booking",
                  "sources", "processed_at"]
        read_only_fields = fields


class BookingSerializer(serializers.ModelSerializer):
    """A call's booking: the outcome's ``booking`` fields, with who called and when."""

    bot = serializers.SlugRelatedField(source="call.bot", slug_field="slug", read_only=True, allow_null=True)
    caller_number = serializers.SerializerMethodField(help_text="The other party's number: the caller of an inbound "
                                                                "call, the callee of an outbound one.")
    direction = serializers.ChoiceField(source="call.direction", choices=Call.Direction.choices, read_only=True)
    started_at = serializers.DateTimeField(source="call.started_at", read_only=True)

    class Meta:
        model = CallOutcome
        fields = ["id", "company", "call", "bot", "booking", "caller_number", "direction", "started_at"]
        read_only_fields = fields

    @staticmethod
    def get_caller_number(outcome) -> str:
        call = outcome.call
        return call.to_number if call.direction == call.Direction.OUTBOUND else call.from_number


@extend_schema_view(list=extend_schema(parameters=OUTCOME_PARAMS))
class OutcomeViewSet(CompanyScopedViewMixin, viewsets.ReadOnlyModelViewSet):
    """Call outcomes: result, intent, summary, the fields collected and the booking, written after each call."""

    queryset_model = CallOutcome
    serializer_class = OutcomeSerializer

    def get_queryset(self):
        queryset = super().get_queryset().select_related("call", "call__bot").order_by("-call__started_at", "-pk")
        if self.action == "list":
            queryset = apply_filters(queryset, self.request.query_params, OUTCOME_FILTERS)
        return queryset


@extend_schema_view(list=extend_schema(parameters=OUTCOME_PARAMS))
class BookingViewSet(OutcomeViewSet):
    """Bookings: the outcomes of calls that made one (id: the outcome's)."""

    serializer_class = BookingSerializer

    def get_queryset(self):
        return super().get_queryset().filter(booking__isnull=False)


# --- Leads --------------------------------------------------------------------------------------


class LeadSerializer(serializers.ModelSerializer):
    bot = serializers.SlugRelatedField(slug_field="slug", read_only=True, allow_null=True)

    class Meta:
        model = Lead
        fields = ["id", "company", "call", "bot", "name", "phone", "email", "contact_sources", "score", "tier",
                  "score_reasons", "created_at"]
        read_only_fields = fields


class CsvRenderer(renderers.BaseRenderer):
    """Lets ``Accept: text/csv`` through content negotiation (the CSV itself is streamed)."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return data if isinstance(data, (bytes, str)) else b""


@extend_schema_view(list=extend_schema(parameters=LEAD_PARAMS))
class LeadViewSet(CompanyScopedViewMixin, viewsets.ReadOnlyModelViewSet):
    """Leads: callers' contact fields, scored by the bot's rules (hot, warm, cold); ``export`` as CSV."""

    queryset_model = Lead
    serializer_class = LeadSerializer

    def get_queryset(self):
        queryset = super().get_queryset().select_related("bot").order_by("-created_at", "-pk")
        if self.action in ("list", "export"):
            queryset = apply_filters(queryset, self.request.query_params, LEAD_FILTERS)
        return queryset

    def handle_exception(self, exc):
        # An error of the CSV export is JSON in the one error shape, whatever the Accept header asked for.
        if getattr(self, "action", None) == "export":
            self.request.accepted_renderer = renderers.JSONRenderer()
            self.request.accepted_media_type = self.request.accepted_renderer.media_type
        return super().handle_exception(exc)

    @extend_schema(parameters=LEAD_PARAMS, responses={(200, "text/csv"): OpenApiTypes.BINARY})
    @action(detail=False, methods=["get"], renderer_classes=[renderers.JSONRenderer, CsvRenderer],
            pagination_class=None)
    def export(self, request):
        """Every lead the filters select (not one page) as a CSV attachment: a header line, then one line per
        lead (``id, created_at, company, bot, call_id, name, phone, email, score, tier, score_reasons``)."""
        leads = self.get_queryset()
        response = StreamingHttpResponse(exporting.csv_lines(leads), content_type="text/csv; charset=utf-8")
        stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
        response["Content-Disposition"] = f'attachment; filename="leads-{stamp}.csv"'
        return response


# --- Webhook endpoints and deliveries -----------------------------------------------------------


def new_secret() -> str:
    """A signing secret, as admin's form proposes one."""
    return "whsec_" + secrets.token_urlsafe(24)


class EventsField(serializers.MultipleChoiceField):
    """The events an endpoint subscribes to: a list, kept in the order of ``SUBSCRIBABLE_EVENTS``."""

    def __init__(self, **kwargs):
        super().__init__(choices=SUBSCRIBABLE_EVENTS, allow_empty=False, validators=[validate_events], **kwargs)

    def to_internal_value(self, data):
        chosen = super().to_internal_value(data)
        return [event for event, _ in SUBSCRIBABLE_EVENTS if event in chosen]

    def to_representation(self, value):
        return list(value or [])


class WebhookEndpointSerializer(CompanyScopedSerializer):
    """A webhook endpoint: the URL, the events sent to it, its signing secret (write-only)."""

    events = EventsField(help_text="Events sent to this URL (at least one).")

    class Meta:
        model = WebhookEndpoint
        fields = ["id", "company", "url", "events", "secret", "active", "description", "created_at"]
        read_only_fields = ["created_at"]
        extra_kwargs = {
            "secret": {"write_only": True, "required": False, "allow_blank": True,
                       "help_text": "The HMAC secret of X-Voicebot-Signature. Left out or empty on create: one is "
                                    "generated and returned once, in the create response. Never shown again."},
            "url": {"help_text": "Where events are POSTed (https://...): a public address, checked when saved."},
        }

    def get_fields(self):
        fields = super().get_fields()
        if isinstance(self.instance, WebhookEndpoint):
            fields["company"].read_only = True  # an endpoint stays in its company
        return fields

    def validate_secret(self, secret):
        if not secret and self.instance is not None:
            raise serializers.ValidationError("The secret may not be empty; leave it out to keep the current one.")
        return secret

    def create(self, validated_data):
        if not validated_data.get("secret"):
            validated_data["secret"] = new_secret()
        return super().create(validated_data)


class WebhookEndpointCreatedSerializer(WebhookEndpointSerializer):
    """The create response: the endpoint with its ``secret``, shown this once."""

    class Meta(WebhookEndpointSerializer.Meta):
        extra_kwargs = {**WebhookEndpointSerializer.Meta.extra_kwargs,
                        "secret": {"read_only": True, "help_text": "The signing secret: store it now, it is not shown "
                                                                   "again."}}


class WebhookAttemptSerializer(serializers.ModelSerializer):
    error = serializers.SerializerMethodField(help_text="What went wrong (a short, sanitised excerpt); empty when "
                                                        "the receiver answered 2xx.")

    class Meta:
        model = WebhookAttempt
        fields = ["number", "attempted_at", "response_code", "error", "duration_ms", "replay"]
        read_only_fields = fields

    @staticmethod
    def get_error(attempt) -> str:
        return outbound.sanitise(attempt.error, limit=outbound.OWN_MESSAGE_CHARS)


class WebhookDeliverySerializer(serializers.ModelSerializer):
    url = serializers.CharField(source="endpoint.url", read_only=True, help_text="The endpoint's URL.")
    attempt_count = serializers.IntegerField(source="attempts", read_only=True, help_text="Attempts made so far.")
    last_error = serializers.SerializerMethodField()

    class Meta:
        model = WebhookDelivery
        fields = ["id", "endpoint", "url", "event", "event_key", "status", "attempt_count", "last_response_code",
                  "last_error", "next_attempt_at", "delivered_at", "created_at", "payload"]
        read_only_fields = fields

    @staticmethod
    def get_last_error(delivery) -> str:
        return outbound.sanitise(delivery.last_error, limit=outbound.OWN_MESSAGE_CHARS)


class WebhookDeliveryDetailSerializer(WebhookDeliverySerializer):
    attempts = WebhookAttemptSerializer(source="attempt_log", many=True, read_only=True,
                                        help_text="Every POST made, in order (replays included).")

    class Meta(WebhookDeliverySerializer.Meta):
        fields = [*WebhookDeliverySerializer.Meta.fields, "attempts"]
        read_only_fields = fields


ENDPOINT_EXAMPLE = OpenApiExample(
    "An endpoint for calls and leads",
    value={"url": "https://crm.example.com/hooks/voicebot", "events": ["call.ended", "lead.captured"],
           "description": "CRM"},
    request_only=True,
)


class WebhookEndpointViewSet(CompanyScopedViewMixin, viewsets.ModelViewSet):
    """Webhook endpoints: where a company's events are POSTed, signed ``t=..,v1=HMAC-SHA256`` with the secret;
    ``test`` sends a signed ``webhook.test`` event."""

    queryset_model = WebhookEndpoint
    serializer_class = WebhookEndpointSerializer

    def get_queryset(self):
        return super().get_queryset().select_related("company").order_by("company__name", "url", "pk")

    @extend_schema(request=WebhookEndpointSerializer, responses={201: WebhookEndpointCreatedSerializer},
                   examples=[ENDPOINT_EXAMPLE])
    def create(self, request, *args, **kwargs):
        """An endpoint; the response carries its ``secret`` (generated when none was given), this once."""
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        endpoint = serializer.save()
        body = WebhookEndpointCreatedSerializer(endpoint, context=self.get_serializer_context()).data
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={202: WebhookDeliveryDetailSerializer})
    @action(detail=True, methods=["post"])
    def test(self, request, pk=None):
        """Queue a signed ``webhook.test`` event to this endpoint (like admin's test button): 202 with the delivery;
        read it again (``/webhook-deliveries/{id}/``) to see the receiver's answer."""
        delivery = webhooks.send_test_event(self.get_object())
        return Response(WebhookDeliveryDetailSerializer(delivery).data, status=status.HTTP_202_ACCEPTED)


@extend_schema_view(list=extend_schema(parameters=DELIVERY_PARAMS))
class WebhookDeliveryViewSet(CompanyScopedViewMixin, viewsets.ReadOnlyModelViewSet):
    """Webhook deliveries: one event for one endpoint, every attempt logged; ``replay`` sends one again."""

    queryset_model = WebhookDelivery
    lookup_value_regex = "[0-9a-fA-F-]{32,36}"

    def get_serializer_class(self):
        return WebhookDeliverySerializer if self.action == "list" else WebhookDeliveryDetailSerializer

    def get_queryset(self):
        queryset = super().get_queryset().select_related("endpoint").order_by("-created_at", "-pk")
        if self.action == "list":
            queryset = apply_filters(queryset, self.request.query_params, DELIVERY_FILTERS)
        else:
            queryset = queryset.prefetch_related("attempt_log")
        return queryset

    @extend_schema(request=None, responses={202: WebhookDeliveryDetailSerializer})
    @action(detail=True, methods=["post"])
    def replay(self, request, pk=None):
        """Send the delivery again now (same id and payload, a new attempt marked ``replay``), e.g. after fixing
        the receiver: 202 with the delivery; read it again to see the new attempt."""
        delivery = self.get_object()
        webhooks.replay(delivery)
        return Response(WebhookDeliveryDetailSerializer(delivery).data, status=status.HTTP_202_ACCEPTED)


# --- Report schedules and reports ---------------------------------------------------------------


class ReportScheduleSerializer(CompanyScopedSerializer):
    """A company's daily or weekly report: sent at ``hour`` (and, weekly, on ``weekday``), local time."""

    timezone = serializers.CharField(source="company.timezone", read_only=True,
                                     help_text="The company's time zone, in which ``hour`` and ``weekday`` are read.")

    class Meta:
        model = ReportSchedule
        fields = ["id", "company", "period", "hour", "weekday", "active", "timezone"]
        extra_kwargs = {"hour": {"max_value": 23}, "weekday": {"max_value": 6}}
        validators = []  # one schedule per company and period: checked in validate(), naming ``period``

    def get_fields(self):
        fields = super().get_fields()
        if isinstance(self.instance, ReportSchedule):
            fields["company"].read_only = True  # a schedule stays in its company
        return fields

    def validate(self, attrs):
        company = attrs.get("company") or getattr(self.instance, "company", None)
        period = attrs.get("period", getattr(self.instance, "period", Period.DAY))
        if company is not None:
            clash = ReportSchedule.objects.filter(company=company, period=period)
            if self.instance is not None:
                clash = clash.exclude(pk=self.instance.pk)
            if clash.exists():
                label = dict(Period.choices)[period].lower()
                raise serializers.ValidationError(
                    {"period": f"{company.name} already has a {label} report schedule (id {clash.first().pk}); "
                               "change that one instead."})
        return super().validate(attrs)


class ReportScheduleViewSet(CompanyScopedViewMixin, viewsets.ModelViewSet):
    """Report schedules: a company's daily or weekly report, e-mailed to its report recipients and sent as
    ``report.ready`` by Celery beat at a local hour. Saving one updates its beat task; deleting removes it."""

    queryset_model = ReportSchedule
    serializer_class = ReportScheduleSerializer

    def get_queryset(self):
        return super().get_queryset().select_related("company").order_by("company__name", "period", "pk")


class ReportSerializer(serializers.ModelSerializer):
    class Meta:
        model = Report
        fields = ["id", "company", "period", "period_start", "period_end", "data", "created_at", "emailed_at",
                  "emailed_to"]
        read_only_fields = fields


@extend_schema_view(list=extend_schema(parameters=REPORT_PARAMS))
class ReportViewSet(CompanyScopedViewMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin,
                    viewsets.GenericViewSet):
    """Reports: a company's figures for one local day or week (calls, answered, outcomes, leads by tier,
    latency, busiest hours), built by the report schedules."""

    queryset_model = Report
    serializer_class = ReportSerializer

    def get_queryset(self):
        queryset = super().get_queryset().order_by("-period_start", "-pk")
        if self.action == "list":
            queryset = apply_filters(queryset, self.request.query_params, {"period": "period"})
        return queryset
