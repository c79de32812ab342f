from __future__ import annotations

from rest_framework import serializers

from voicebot.models import Bot, Call, CallTurn, Company, PhoneNumber
from voicebot.scenarios import ScenarioError, validate_scenarios


class CompanyScopedSerializer(serializers.ModelSerializer):
    """``company`` and ``bot`` choices limited to the request's companies.

    With a single company in scope (an API key), ``company`` may be omitted.
    """

    def get_fields(self):
        fields = super().get_fields()
        companies = self.context.get("companies", Company.objects.none())
        if "company" in fields:
            fields["company"].queryset = companies
        if "bot" in fields and hasattr(fields["bot"], "queryset"):
            fields["bot"].queryset = Bot.objects.filter(company__in=companies)
        return fields

    def to_internal_value(self, data):
        companies = self.context.get("companies")
        if self.instance is None and "company" not in data and companies is not None and companies.count() == 1:
            # Before validation, so that unique-together checks see the company too.
            data = {**data, "company": companies.get().pk}
        return super().to_internal_value(data)

    def validate(self, attrs):
        company = attrs.get("company") or getattr(self.instance, "company", None)
        bot = attrs.get("bot")
        if bot is not None and company is not None and bot.company_id != company.pk:
            raise serializers.ValidationError({"bot": "This bot belongs to another company."})
        return attrs


class BotSerializer(CompanyScopedSerializer):
    class Meta:
        model = Bot
        fields = [
            "id", "company", "name", "slug", "active", "language", "greeting", "system_prompt", "voice",
            "stt_model", "llm_model", "temperature", "max_tokens", "scenarios", "fallback_phrase", "max_turns",
            "silence_timeout_sec", "transfer_number", "use_knowledge", "answer_style", "knowledge_top_k",
            "knowledge_score_threshold", "created_at", "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]

    def validate_scenarios(self, value):
        try:
            return validate_scenarios(value)
        except ScenarioError as exc:
            raise serializers.ValidationError(exc.errors) from None


class PhoneNumberSerializer(CompanyScopedSerializer):
    class Meta:
        model = PhoneNumber
        fields = ["id", "company", "number", "provider", "bot", "label", "active", "created_at"]
        read_only_fields = ["created_at"]


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
