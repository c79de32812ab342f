"""/api/v1/bots/ and /api/v1/tools/: bots, their whole configuration document, their tools.

``GET|PUT /bots/{slug}/config/`` reads and replaces everything a bot is made of in one
document: its settings, its scenarios and its tools (matched by name: tools missing from
the document are deleted; a tool's ``secret`` left out keeps the stored one, so a document
read, edited and put back loses nothing). One transaction: all of it, or nothing.
"""

from __future__ import annotations

from django.db import transaction
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from voicebot.api.filters import apply_filters
from voicebot.api.scoping import CompanyScopedViewMixin
from voicebot.api.serializers import CompanyScopedSerializer, ModelCleanMixin
from voicebot.models import Bot, BotTool
from voicebot.scenarios import ScenarioError, validate_scenarios

BOT_SETTINGS = [
    "name", "active", "language", "greeting", "system_prompt", "voice", "stt_model", "llm_model", "temperature",
    "max_tokens", "scenarios", "fallback_phrase", "max_turns", "silence_timeout_sec", "transfer_number",
    "voicemail_message", "outbound_greeting_wait_sec", "use_knowledge", "answer_style", "knowledge_top_k",
    "knowledge_score_threshold",
]
TOOL_FIELDS = ["name", "description", "parameters", "url", "secret", "requires_confirmation", "speak_response",
               "timeout_sec", "active"]


class ScenariosField:
    """Scenarios checked as a field, so that their errors come with the other fields' errors."""

    def validate_scenarios(self, value):
        try:
            return validate_scenarios(value)
        except ScenarioError as exc:
            raise serializers.ValidationError(exc.errors) from None


class BotSerializer(ScenariosField, CompanyScopedSerializer):
    class Meta:
        model = Bot
        fields = ["id", "company", "slug", *BOT_SETTINGS, "created_at", "updated_at"]
        read_only_fields = ["created_at", "updated_at"]

    def get_fields(self):
        fields = super().get_fields()
        if isinstance(self.instance, Bot):
            fields["company"].read_only = True  # a bot stays in its company
        return fields


class BotToolSerializer(CompanyScopedSerializer):
    class Meta:
        model = BotTool
        fields = ["id", "bot", *TOOL_FIELDS]
        extra_kwargs = {"secret": {"write_only": True}}

    def get_fields(self):
        fields = super().get_fields()
        if isinstance(self.instance, BotTool):
            fields["bot"].read_only = True  # a tool stays with its bot
        return fields


class ConfigToolSerializer(ModelCleanMixin, serializers.ModelSerializer):
    """A tool inside a bot's configuration document (its bot is the document's)."""

    class Meta:
        model = BotTool
        fields = TOOL_FIELDS
        extra_kwargs = {"secret": {"write_only": True, "required": False}}
        validators = []  # (bot, name) is unique: checked across the document instead


class BotConfigSerializer(ScenariosField, ModelCleanMixin, serializers.ModelSerializer):
    """Everything a bot is made of: settings, scenarios, tools. PUT replaces all of it."""

    tools = ConfigToolSerializer(many=True, required=False)

    class Meta:
        model = Bot
        fields = [*BOT_SETTINGS, "tools"]
        # The bot's name is unique per company: that check needs the instance's company.
        validators = []

    def validate_tools(self, tools):
        names = [tool["name"] for tool in tools]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise serializers.ValidationError(f"Tool name(s) {', '.join(repeated)} appear more than once.")
        return tools

    def validate_name(self, name):
        clash = Bot.objects.filter(company_id=self.instance.company_id, name=name).exclude(pk=self.instance.pk)
        if clash.exists():
            raise serializers.ValidationError("Another bot of this company has this name.")
        return name

    def to_representation(self, bot):
        data = super().to_representation(bot)
        data["tools"] = ConfigToolSerializer(bot.tools.order_by("name"), many=True).data
        return data

    @transaction.atomic
    def update(self, bot, validated_data):
        tools = validated_data.pop("tools", [])
        for name in BOT_SETTINGS:  # PUT: a setting left out goes back to its default
            value = validated_data.get(name, Bot._meta.get_field(name).get_default())
            setattr(bot, name, value)
        bot.save()
        kept = {tool.name: tool for tool in bot.tools.all()}
        bot.tools.exclude(name__in=[tool["name"] for tool in tools]).delete()
        for fields in tools:
            tool = kept.get(fields["name"]) or BotTool(bot=bot)
            secret = fields.pop("secret", tool.secret)
            for name in TOOL_FIELDS:
                if name != "secret":
                    setattr(tool, name, fields.get(name, BotTool._meta.get_field(name).get_default()))
            tool.secret = secret
            tool.save()
        return bot


@extend_schema(parameters=[
    OpenApiParameter("company", int, description="Only this company's bots."),
    OpenApiParameter("active", bool, description="Only active (true) or inactive (false) bots."),
])
class BotViewSet(CompanyScopedViewMixin, viewsets.ModelViewSet):
    """Bots. ``activate``/``deactivate`` switch calls on and off; ``config`` is the whole document."""

    queryset_model = Bot
    serializer_class = BotSerializer
    lookup_field = "slug"

    def get_queryset(self):
        queryset = super().get_queryset().select_related("company")
        if self.action == "list":
            queryset = apply_filters(queryset, self.request.query_params, {"company": "company", "active": "active"})
        return queryset

    def _set_active(self, active: bool):
        bot = self.get_object()
        if bot.active != active:
            bot.active = active
            bot.save(update_fields=["active", "updated_at"])
        return Response(BotSerializer(bot, context=self.get_serializer_context()).data)

    @extend_schema(request=None, responses=BotSerializer)
    @action(detail=True, methods=["post"])
    def activate(self, request, slug=None):
        """The bot takes calls again."""
        return self._set_active(True)

    @extend_schema(request=None, responses=BotSerializer)
    @action(detail=True, methods=["post"])
    def deactivate(self, request, slug=None):
        """The bot stops taking calls: callers hear a short apology."""
        return self._set_active(False)

    @extend_schema(methods=["GET"], request=None, responses=BotConfigSerializer)
    @extend_schema(methods=["PUT"], request=BotConfigSerializer, responses=BotConfigSerializer)
    @action(detail=True, methods=["get", "put"], serializer_class=BotConfigSerializer)
    def config(self, request, slug=None):
        """GET: the bot's whole configuration document. PUT: replace it (settings left out get their defaults)."""
        bot = self.get_object()
        if request.method == "GET":
            return Response(BotConfigSerializer(bot).data)
        document = BotConfigSerializer(bot, data=request.data)
        document.is_valid(raise_exception=True)
        document.save()
        return Response(BotConfigSerializer(bot).data)


@extend_schema(parameters=[OpenApiParameter("bot", str, description="Only this bot's tools (its slug).")])
class BotToolViewSet(CompanyScopedViewMixin, viewsets.ModelViewSet):
    """Tools: HTTP actions a bot can take (book in the client's calendar...)."""

    queryset_model = BotTool
    serializer_class = BotToolSerializer

    def get_queryset(self):
        queryset = super().get_queryset().select_related("bot")
        if self.action == "list":
            queryset = apply_filters(queryset, self.request.query_params, {"bot": "bot__slug"})
        return queryset

