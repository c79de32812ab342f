"""/api/v1/companies/: the agency's clients.

Agency keys and superusers create, update and delete companies (and set ``max_lines``,
the lines the client bought). A company's key, or its staff, read their own company and
may edit it like in admin, all but ``max_lines``.
"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied

from voicebot.api.bots import BotSerializer
from voicebot.api.permissions import AgencyOnly, is_agency
from voicebot.api.scoping import companies_for
from voicebot.api.serializers import ModelCleanMixin
from voicebot.models import Bot, Company


class CompanySerializer(ModelCleanMixin, serializers.ModelSerializer):
    class Meta:
        model = Company
        fields = ["id", "name", "slug", "timezone", "country", "default_language", "report_recipients", "max_lines",
                  "created_at", "updated_at"]
        read_only_fields = ["created_at", "updated_at"]

    def get_fields(self):
        fields = super().get_fields()
        request = self.context.get("request")
        if request is not None and not is_agency(request):
            fields["max_lines"].read_only = True  # the lines a client bought: the agency's to set
        return fields


class CompanyViewSet(viewsets.ModelViewSet):
    """Companies; ``bots`` lists one company's bots."""

    serializer_class = CompanySerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Company.objects.none()
        return companies_for(self.request).order_by("name")

    def get_permissions(self):
        permissions = super().get_permissions()
        if self.action == "create":
            permissions.append(AgencyOnly())
        return permissions

    def destroy(self, request, *args, **kwargs):
        self.get_object()  # another company's is not found, whoever asks
        if not is_agency(request):
            raise PermissionDenied(AgencyOnly.message)
        return super().destroy(request, *args, **kwargs)

    @extend_schema(request=None, responses=BotSerializer(many=True))
    @action(detail=True, methods=["get"])
    def bots(self, request, pk=None):
        """The company's bots."""
        company = self.get_object()
        page = self.paginate_queryset(Bot.objects.filter(company=company).select_related("company"))
        context = {**self.get_serializer_context(), "companies": Company.objects.filter(pk=company.pk)}
        return self.get_paginated_response(BotSerializer(page, many=True, context=context).data)
