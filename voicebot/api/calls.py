"""/api/v1/calls/: calls with their transcripts and post-call results; POST places an outbound call.

``GET /calls/`` filters by bot, time, direction, status, transport, outcome, lead tier, phone
number and transcript text; each row says whether there is a recording, the outcome's result
and the lead's tier. ``GET /calls/{id}/`` adds the turns and the outcome and lead.
``GET /calls/{id}/recording/`` is the recording, with range requests so a browser can seek.

The post-call results (``postcall``'s CallOutcome and Lead) are read through the Call's
reverse relations (``call.outcome``, ``call.lead``): voicebot does not import postcall.
"""

from __future__ import annotations

from django.conf import settings
from django.db.models import Exists, OuterRef, Q
from django.http import FileResponse
from django.utils.http import content_disposition_header
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from voicebot.api.errors import ApiError, field_error
from voicebot.api.filters import apply_filters
from voicebot.api.ranges import RangeFile, RangeNotSatisfiable, parse_range
from voicebot.api.scoping import CompanyScopedViewMixin, companies_for
from voicebot.models import Bot, Call, CallTurn, Company
from voicebot.outbound_calls import CallRequestError, request_call
from voicebot.phone import BadPhoneNumber, to_e164

# The post-call models, through the Call's reverse one-to-one relations.
CallOutcome = Call._meta.get_field("outcome").related_model
Lead = Call._meta.get_field("lead").related_model

LIST_FILTERS = {
    "bot": "bot__slug",
    "since": "started_at__gte",  # a date: from its start (UTC)
    "until": "started_at__lte",  # a date: to its end (UTC)
    "direction": "direction",
    "status": "status",
    "transport": "transport",
    "outcome": "outcome__result",
    "lead_tier": "lead__tier",
}
MAX_TEXT_PARAM_CHARS = 200

# Recordings are WAV (pipelines/live/recorder.py); other audio an admin may have attached gets its type.
RECORDING_TYPES = {".wav": "audio/wav", ".mp3": "audio/mpeg", ".ogg": "audio/ogg"}
OCTET_STREAM = "application/octet-stream"


class RecordingResponse(FileResponse):
    block_size = 64 * 1024  # streamed in blocks of this size


class CallTurnSerializer(serializers.ModelSerializer):
    class Meta:
        model = CallTurn
        fields = ["index", "role", "text", "start_ms", "end_ms", "latency_ms", "interrupted"]


class CallSerializer(serializers.ModelSerializer):
    duration_sec = serializers.FloatField(read_only=True, allow_null=True)
    has_recording = serializers.SerializerMethodField(help_text="Whether GET .../recording/ has audio.")
    result = serializers.SerializerMethodField(
        help_text="The post-call outcome's result (booking, lead, information...); null until processed.")
    lead_tier = serializers.SerializerMethodField(help_text="The lead's tier: hot, warm or cold; null when no lead.")

    class Meta:
        model = Call
        fields = [
            "id", "company", "bot", "external_id", "transport", "direction", "from_number", "to_number", "status",
            "started_at", "answered_at", "ended_at", "duration_sec", "end_reason", "scenario", "collected_fields",
            "variables", "metrics", "analytics", "has_recording", "result", "lead_tier",
        ]

    @extend_schema_field(OpenApiTypes.BOOL)
    def get_has_recording(self, call) -> bool:
        return bool(call.recording)

    @extend_schema_field(serializers.ChoiceField(choices=CallOutcome.Result.choices, allow_null=True))
    def get_result(self, call):
        outcome = getattr(call, "outcome", None)  # select_related: no query, None when there is none
        return outcome.result if outcome is not None else None

    # A plain string: an enum here would be a second name (LeadTierEnum) for the lead's TierEnum.
    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_lead_tier(self, call):
        lead = getattr(call, "lead", None)
        return lead.tier if lead is not None else None


class CallOutcomeSummarySerializer(serializers.Serializer):
    """The call's post-call outcome (postcall's CallOutcome)."""

    result = serializers.ChoiceField(choices=CallOutcome.Result.choices)
    intent = serializers.CharField()
    summary = serializers.CharField()
    fields = serializers.DictField(help_text='Field name -> {"value": ..., "source": ...}.')
    booking = serializers.DictField(allow_null=True, help_text="The booking's fields when one was made.")


class CallLeadSerializer(serializers.Serializer):
    """The lead captured in the call (postcall's Lead)."""

    id = serializers.IntegerField()
    name = serializers.CharField()
    phone = serializers.CharField()
    email = serializers.CharField()
    score = serializers.IntegerField()
    tier = serializers.ChoiceField(choices=Lead.Tier.choices)


class CallDetailSerializer(CallSerializer):
    turns = CallTurnSerializer(many=True, read_only=True)
    outcome = CallOutcomeSummarySerializer(read_only=True, allow_null=True,
                                           help_text="Written after the call by post-call processing; null before.")
    lead = CallLeadSerializer(read_only=True, allow_null=True, help_text="null when the call captured no lead.")

    class Meta(CallSerializer.Meta):
        fields = CallSerializer.Meta.fields + ["turns", "outcome", "lead"]


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


def _choices(field_name: str) -> list[str]:
    return [value for value, _ in Call._meta.get_field(field_name).choices]


LIST_PARAMETERS = [
    OpenApiParameter("bot", str, description="Only this bot's calls (its slug)."),
    OpenApiParameter("since", OpenApiTypes.DATETIME,
                     description="Calls started at or after this ISO date-time, or this date (UTC, from 00:00)."),
    OpenApiParameter("until", OpenApiTypes.DATETIME,
                     description="Calls started at or before this ISO date-time, or on or before this date "
                                 "(UTC, the whole day)."),
    OpenApiParameter("direction", str, enum=_choices("direction"), description="inbound or outbound."),
    OpenApiParameter("status", str, enum=_choices("status"), description="The call's status."),
    OpenApiParameter("transport", str, enum=_choices("transport"),
                     description="How the call came (twilio, sip, webrtc, chat...)."),
    OpenApiParameter("outcome", str, enum=[value for value, _ in CallOutcome.Result.choices],
                     description="The post-call outcome's result."),
    OpenApiParameter("lead_tier", str, enum=[value for value, _ in Lead.Tier.choices],
                     description="The tier of the lead the call captured."),
    OpenApiParameter("phone_number", str,
                     description="Calls from or to this number (read like a typed number: \"(212) 555-0123\" "
                                 "finds +12125550123 in the company's country), or this exact address."),
    OpenApiParameter("q", str, description="Words in the transcript (any turn, case-insensitive)."),
]


def _text_param(params, name: str) -> str:
    value = (params.get(name) or "").strip()
    if "\x00" in value:
        raise field_error(name, "Null characters are not allowed.")
    if len(value) > MAX_TEXT_PARAM_CHARS:
        raise field_error(name, f"At most {MAX_TEXT_PARAM_CHARS} characters.")
    return value


def phone_number_query(raw: str, countries) -> Q:
    """Calls from or to ``raw``: as given, and as E.164 read in each of ``countries`` (also in sip:/tel: URIs)."""
    numbers = {raw}
    for country in countries:
        try:
            numbers.add(to_e164(raw, country=country or settings.DEFAULT_COUNTRY))
        except BadPhoneNumber:
            pass
    query = Q()
    for number in numbers:
        query |= Q(from_number=number) | Q(to_number=number)
        if number.startswith("+"):
            for prefix in ("sip:", "sips:", "tel:"):
                uri = f"{prefix}{number}"
                query |= Q(from_number=uri) | Q(to_number=uri)
                query |= Q(from_number__startswith=f"{uri}@") | Q(to_number__startswith=f"{uri}@")
                query |= Q(from_number__startswith=f"{uri};") | Q(to_number__startswith=f"{uri};")
    return query


def recording_content_type(name: str) -> str:
    dot = name.rfind(".")
    return RECORDING_TYPES.get(name[dot:].lower(), OCTET_STREAM) if dot >= 0 else OCTET_STREAM


RECORDING_MEDIA = [*RECORDING_TYPES.values(), OCTET_STREAM]


class RangeNotSatisfiableError(ApiError):
    status_code = status.HTTP_416_REQUESTED_RANGE_NOT_SATISFIABLE
    default_code = "range_not_satisfiable"

    def __init__(self, size: int):
        super().__init__(f"Range: not satisfiable, the recording has {size} bytes.", fields={"Range": [
            f"The recording has {size} bytes; ask for a range that starts before byte {size}."]})
        self.size = size


class CallViewSet(CompanyScopedViewMixin, mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Calls are written by the call runner; the API reads them, and places outbound ones (``create``)."""

    queryset_model = Call

    def get_queryset(self):
        queryset = super().get_queryset().select_related("bot", "outcome", "lead")
        if self.action == "retrieve":
            queryset = queryset.prefetch_related("turns")
        if self.action == "list":
            queryset = self.filter_list(queryset, self.request.query_params)
        return queryset

    def filter_list(self, queryset, params):
        for name in LIST_FILTERS:
            if "\x00" in (params.get(name) or ""):
                raise field_error(name, "Null characters are not allowed.")
        queryset = apply_filters(queryset, params, LIST_FILTERS)
        phone = _text_param(params, "phone_number")
        if phone:
            countries = set(companies_for(self.request).order_by().values_list("country", flat=True).distinct()[:20])
            queryset = queryset.filter(phone_number_query(phone, countries or {settings.DEFAULT_COUNTRY}))
        text = _text_param(params, "q")
        if text:  # EXISTS, not a join: a call with many matching turns is listed once
            queryset = queryset.filter(Exists(CallTurn.objects.filter(call=OuterRef("pk"), text__icontains=text)))
        return queryset

    def get_serializer_class(self):
        if self.action == "create":
            return PlaceCallSerializer
        return CallDetailSerializer if self.action == "retrieve" else CallSerializer

    @extend_schema(request=PlaceCallSerializer, responses={201: CallSerializer})
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

    @extend_schema(parameters=LIST_PARAMETERS)
    def list(self, request, *args, **kwargs):
        """Calls, newest first, filtered by the query parameters; 400 naming a parameter whose value is wrong."""
        return super().list(request, *args, **kwargs)

    def retrieve(self, request, *args, **kwargs):
        """The call with its transcript (turns), metrics, collected fields and post-call outcome and lead."""
        return super().retrieve(request, *args, **kwargs)

    def perform_content_negotiation(self, request, force=False):
        # The recording answers audio whatever Accept says; its errors fall back to JSON.
        return super().perform_content_negotiation(request, force=force or self.action == "recording")

    def handle_exception(self, exc):
        response = super().handle_exception(exc)
        if isinstance(exc, RangeNotSatisfiableError):
            response["Content-Range"] = f"bytes */{exc.size}"
        return response

    @extend_schema(
        parameters=[OpenApiParameter(
            "Range", str, OpenApiParameter.HEADER,
            description="A byte range (bytes=0-1023, bytes=1024-, bytes=-1024): 206 with those bytes. A "
                        "malformed one, or several ranges, is ignored (200, the whole file).")],
        responses={
            **{(200, media): OpenApiResponse(OpenApiTypes.BINARY, description="The whole recording.")
               for media in RECORDING_MEDIA},
            **{(206, media): OpenApiResponse(OpenApiTypes.BINARY, description="The bytes of the requested "
                                                                              "range (see Content-Range).")
               for media in RECORDING_MEDIA},
            416: OpenApiResponse({"$ref": "#/components/schemas/Error"},
                                 description="The range starts past the end (Content-Range: bytes */size)."),
        },
    )
    @action(detail=True, methods=["get"])
    def recording(self, request, pk=None):
        """The call's recording (WAV), streamed; supports range requests (Accept-Ranges: bytes) for seeking.

        404 when the call has no recording."""
        call = self.get_object()
        if not call.recording:
            raise NotFound("This call has no recording.")
        try:
            size = call.recording.size
            file = call.recording.storage.open(call.recording.name, "rb")
        except (FileNotFoundError, OSError):
            raise NotFound("This call's recording file is missing.") from None
        name = call.recording.name.rsplit("/", 1)[-1]
        try:
            wanted = parse_range(request.headers.get("Range"), size)
        except RangeNotSatisfiable:
            file.close()
            raise RangeNotSatisfiableError(size) from None
        if wanted is None:
            response = RecordingResponse(file, status=status.HTTP_200_OK)
            length = size
        else:
            response = RecordingResponse(RangeFile(file, wanted), status=status.HTTP_206_PARTIAL_CONTENT)
            response["Content-Range"] = wanted.content_range(size)
            length = wanted.length
        response["Content-Type"] = recording_content_type(name)
        response["Content-Length"] = str(length)
        response["Content-Disposition"] = content_disposition_header(False, name)
        response["Accept-Ranges"] = "bytes"
        response["Cache-Control"] = "private, no-cache"
        return response
