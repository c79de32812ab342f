"""REST API of campaigns (/api/v1/campaigns/): thin over ``campaigns.services`` and ``importing``.

An API key acts for its company only; a staff session for the companies it staffs.
"""

from __future__ import annotations

from django.db import transaction
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import parsers, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from campaigns import services
from campaigns.importing import ContactImportError, add_contacts, import_csv
from campaigns.models import RETRY_OUTCOMES, Campaign, Contact
from voicebot.api.errors import field_error
from voicebot.api.scoping import CompanyScopedViewMixin
from voicebot.api.serializers import CompanyScopedSerializer


class CsvParser(parsers.BaseParser):
    """A contact list POSTed as the body itself (Content-Type: text/csv)."""

    media_type = "text/csv"

    def parse(self, stream, media_type=None, parser_context=None):
        return {"csv": stream.read()}


RETRY_FIELDS = [f"retry_{field}_{part}" for field in RETRY_OUTCOMES.values() for part in ("minutes", "times")]
BREAKER_FIELDS = ["breaker_failed_percent", "breaker_last_calls", "breaker_minutes", "breaker_min_calls"]


class CampaignSerializer(CompanyScopedSerializer):
    class Meta:
        model = Campaign
        fields = [
            "id", "company", "name", "bot", "from_number", "status", "status_note", "timezone", "calling_hours",
            "starts_at", "ends_at", "max_concurrent_calls", "calls_per_minute", "max_attempts", *RETRY_FIELDS,
            *BREAKER_FIELDS, "voicemail_message", "created_at", "updated_at", "started_at", "resumed_at",
            "finished_at",
        ]
        read_only_fields = ["status", "status_note", "created_at", "updated_at", "started_at", "resumed_at",
                            "finished_at"]

    def get_fields(self):
        fields = super().get_fields()
        if self.instance is not None and not isinstance(self.instance, (list, tuple)) and "company" in fields:
            fields["company"].read_only = True  # a campaign stays in its company
        return fields


class CampaignDetailSerializer(CampaignSerializer):
    progress = serializers.SerializerMethodField()

    class Meta(CampaignSerializer.Meta):
        fields = [*CampaignSerializer.Meta.fields, "progress"]

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_progress(self, campaign):
        return services.progress(campaign=campaign)


class ContactSerializer(serializers.ModelSerializer):
    class Meta:
        model = Contact
        fields = ["id", "phone", "name", "timezone", "variables", "status", "attempts_made", "next_attempt_at",
                  "last_status", "note", "created_at", "updated_at"]
        read_only_fields = fields


class CampaignViewSet(CompanyScopedViewMixin, viewsets.ModelViewSet):
    """Campaigns; ``start``, ``pause``, ``resume``, ``cancel``; ``contacts`` to list them or add a list."""

    queryset_model = Campaign
    parser_classes = [parsers.JSONParser, parsers.MultiPartParser, parsers.FormParser, CsvParser]

    def get_queryset(self):
        return super().get_queryset().select_related("company", "bot").order_by("-created_at")

    def get_serializer_class(self):
        return CampaignDetailSerializer if self.action != "list" else CampaignSerializer

    def create(self, request, *args, **kwargs):
        """A campaign, and its contacts in the same request when given (JSON ``contacts``, or a multipart
        ``file`` beside the other fields): 201 with the campaign and the list's ``import`` report. A list
        that cannot be read creates nothing (400 naming it)."""
        fields = {key: value for key, value in request.data.items() if key not in ("contacts", "csv", "file")}
        serializer = self.get_serializer(data=fields)
        serializer.is_valid(raise_exception=True)
        has_list = "file" in request.FILES or any(key in request.data for key in ("contacts", "csv"))
        try:
            with transaction.atomic():
                campaign = serializer.save()
                report = self._import(campaign, request) if has_list else None
        except ContactImportError as exc:
            raise field_error(exc.field, str(exc)) from None
        body = CampaignDetailSerializer(campaign, context=self.get_serializer_context()).data
        if report is not None:
            body["import"] = report.as_dict()
        return Response(body, status=status.HTTP_201_CREATED)

    def destroy(self, request, *args, **kwargs):
        if self.get_object().status == Campaign.Status.RUNNING:
            raise field_error("status", "a running campaign cannot be deleted; pause or cancel it first",
                              status_code=409)
        return super().destroy(request, *args, **kwargs)

    def _control(self, change):
        try:
            campaign = change(campaign=self.get_object())
        except services.CampaignError as exc:
            raise field_error(exc.field, str(exc), status_code=409 if exc.field == "status" else 400) from None
        return Response(CampaignDetailSerializer(campaign, context=self.get_serializer_context()).data)

    @action(detail=True, methods=["post"])
    def start(self, request, pk=None):
        return self._control(services.start_campaign)

    @action(detail=True, methods=["post"])
    def pause(self, request, pk=None):
        return self._control(services.pause_campaign)

    @action(detail=True, methods=["post"])
    def resume(self, request, pk=None):
        return self._control(services.resume_campaign)

    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        return self._control(services.cancel_campaign)

    @action(detail=True, methods=["get", "post"])
    def contacts(self, request, pk=None):
        """GET: the contacts (``?status=``). POST: add a list, as a CSV file (multipart ``file``, or a
        text/csv body) or JSON ``{"contacts": [{"phone": ..., "name": ..., "variables": {...}}]}``."""
        campaign = self.get_object()
        if request.method == "GET":
            contacts = campaign.contacts.order_by("pk")
            wanted = request.query_params.get("status")
            if wanted:
                if wanted not in Contact.Status.values:
                    raise field_error("status", f"{wanted!r} is not one of {', '.join(Contact.Status.values)}")
                contacts = contacts.filter(status=wanted)
            page = self.paginate_queryset(contacts)
            return self.get_paginated_response(ContactSerializer(page, many=True).data)
        if campaign.status == Campaign.Status.CANCELED:
            raise field_error("status", "the campaign is canceled; contacts cannot be added", status_code=409)
        try:
            result = self._import(campaign, request)
        except ContactImportError as exc:
            raise field_error(exc.field, str(exc)) from None
        return Response(result.as_dict(), status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK)

    @action(detail=True, methods=["post"], url_path=r"contacts/(?P<contact_id>\d+)/skip")
    def skip_contact(self, request, pk=None, contact_id=None):
        contact = self.get_object().contacts.filter(pk=contact_id).first()
        if contact is None:
            raise NotFound("No such contact in this campaign.")
        try:
            contact = services.skip_contact(contact=contact, note=str(request.data.get("note") or "skipped via the API"))
        except services.CampaignError as exc:
            raise field_error(exc.field, str(exc), status_code=409) from None
        return Response(ContactSerializer(contact).data)

    @staticmethod
    def _import(campaign, request):
        data = request.data
        if "file" in request.FILES:
            return import_csv(campaign=campaign, data=request.FILES["file"].read())
        if "csv" in data:
            return import_csv(campaign=campaign, data=data["csv"])
        rows = data.get("contacts") if isinstance(data, dict) else data
        if not isinstance(rows, list):
            raise ContactImportError("contacts", 'send a CSV file ("file"), a text/csv body, or JSON '
                                                 '{"contacts": [{"phone": "...", "name": "..."}]}')
        return add_contacts(campaign=campaign, rows=enumerate(rows, start=1))
