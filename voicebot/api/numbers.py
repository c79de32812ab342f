"""/api/v1/phone-numbers/: the numbers callers dial, each leading to a bot."""

from __future__ import annotations

from rest_framework import viewsets

from voicebot.api.scoping import CompanyScopedViewMixin
from voicebot.api.serializers import CompanyScopedSerializer
from voicebot.models import PhoneNumber


class PhoneNumberSerializer(CompanyScopedSerializer):
    class Meta:
        model = PhoneNumber
        fields = ["id", "company", "number", "provider", "bot", "label", "active", "created_at"]
        read_only_fields = ["created_at"]




class PhoneNumberViewSet(CompanyScopedViewMixin, viewsets.ModelViewSet):
    queryset_model = PhoneNumber
    serializer_class = PhoneNumberSerializer
