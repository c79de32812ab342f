"""/api/v1/bots/{slug}/chat/: the text channel (a website's chat box) over the same brain as calls.

    POST /api/v1/bots/alpha-desk/chat/  {"text": "I'd like to book"}
      -> {"conversation": "6f0c...", "greeting": "Hello...", "reply": "Sure. Which service...?",
          "ended": false, "state": {"scenario": "booking", "field": "service", ...}, "call": null}
    POST /api/v1/bots/alpha-desk/chat/  {"conversation": "6f0c...", "text": "a manicure"}
    POST /api/v1/bots/alpha-desk/chat/  {"conversation": "6f0c...", "end": true}   -> "call": 42
    GET  /api/v1/bots/alpha-desk/chat/6f0c.../                                     -> turns, state, call

Thin over ``ChatSession`` (pipelines/dialogue/chat.py), like admin's "Try this bot": the
session's snapshot is kept in a ``ChatConversation`` row between requests, locked while a
turn is answered (two requests on one conversation are answered one after the other, no
turn lost). When the bot ends the conversation (goodbye, transfer, turn limit) or the
client sends ``end``, it is stored like a call (transport ``chat``, readable at
``/api/v1/calls/{id}/``) and takes no more text (409).
"""

from __future__ import annotations

import uuid

from django.db import transaction
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import generics, serializers
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from pipelines.chat_views import MAX_MESSAGE_CHARS
from pipelines.config import BotConfig
from pipelines.dialogue.chat import ChatSession
from pipelines.models import ChatConversation
from voicebot.api.errors import Conflict
from voicebot.api.scoping import CompanyScopedViewMixin, companies_for
from voicebot.models import Bot

SLUG_PARAMETER = OpenApiParameter("slug", str, OpenApiParameter.PATH, description="The bot's slug.")
CONVERSATION_PARAMETER = OpenApiParameter("conversation", OpenApiTypes.UUID, OpenApiParameter.PATH,
                                          description="The conversation's id (from a chat reply).")


class ChatRequestSerializer(serializers.Serializer):
    conversation = serializers.UUIDField(
        required=False, allow_null=True,
        help_text="The conversation to continue (from an earlier reply); leave it out to start a new one.")
    text = serializers.CharField(
        required=False, allow_blank=True, max_length=MAX_MESSAGE_CHARS,
        help_text=f"What the visitor typed (1 to {MAX_MESSAGE_CHARS} characters); may be left out with end.")
    end = serializers.BooleanField(
        required=False, default=False,
        help_text="End the conversation (after answering text, if any): it is stored as a call (transport chat).")

    def validate(self, attrs):
        if not attrs.get("text") and not attrs.get("end"):
            raise serializers.ValidationError(
                {"text": f"Type a message (1 to {MAX_MESSAGE_CHARS} characters), or send end: true."})
        return attrs


class ChatStateSerializer(serializers.Serializer):
    """Where the conversation stands in the bot's scenarios (the scenario engine's state)."""

    scenario = serializers.CharField(allow_null=True, help_text="The scenario in progress, if any.")
    field = serializers.CharField(allow_null=True, help_text="The field the bot is asking for now.")
    awaiting = serializers.CharField(allow_null=True, help_text="field, confirm or correction; null outside one.")
    values = serializers.DictField(help_text="The scenario's values so far (normalised).")
    collected = serializers.DictField(help_text="Values of the scenarios completed (normalised).")
    completed = serializers.ListField(child=serializers.CharField(), help_text="Scenarios completed.")
    menu = serializers.CharField(allow_null=True, help_text="The keypad menu open now, if any.")
    turns = serializers.IntegerField(help_text="Visitor turns so far.")
    ended = serializers.BooleanField(help_text="The bot ended the conversation (goodbye, transfer, turn limit).")
    end_reason = serializers.CharField(allow_blank=True)


class ChatReplySerializer(serializers.Serializer):
    conversation = serializers.UUIDField(help_text="Send it back to continue this conversation.")
    greeting = serializers.CharField(allow_null=True, help_text="The bot's greeting: only when the conversation "
                                                                "started with this request.")
    reply = serializers.CharField(allow_blank=True, help_text="The bot's answer to the text.")
    kind = serializers.CharField(allow_blank=True,
                                 help_text="How it was answered: script, knowledge, llm, fallback, action, end...")
    ended = serializers.BooleanField(help_text="The conversation is over: it takes no more text.")
    state = ChatStateSerializer()
    call = serializers.IntegerField(allow_null=True, help_text="The stored call (GET /api/v1/calls/{id}/), "
                                                               "once the conversation ended.")


class ChatTurnSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=["bot", "caller"])
    text = serializers.CharField(allow_blank=True)
    kind = serializers.CharField(allow_blank=True, help_text="Bot turns: greeting, script, knowledge, llm...")
    at_ms = serializers.IntegerField(help_text="Milliseconds since the conversation started.")


class ChatConversationSerializer(serializers.Serializer):
    conversation = serializers.UUIDField(source="id")
    bot = serializers.CharField(source="bot.slug")
    turns = serializers.SerializerMethodField()
    state = ChatStateSerializer()
    ended = serializers.BooleanField()
    call = serializers.IntegerField(source="call_id", allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    ended_at = serializers.DateTimeField(allow_null=True)

    @extend_schema_field(ChatTurnSerializer(many=True))
    def get_turns(self, conversation):
        return [{"role": role, "text": text, "kind": kind, "at_ms": at_ms}
                for role, text, at_ms, _latency, kind in conversation.snapshot.get("turns", [])]


class _BotChatMixin(CompanyScopedViewMixin):
    queryset_model = ChatConversation

    def bot(self, slug: str) -> Bot:
        if "\x00" in slug or len(slug) > Bot._meta.get_field("slug").max_length:
            raise NotFound("No bot with this slug.")  # not a slug any bot can have
        bot = (Bot.objects.filter(company__in=companies_for(self.request), slug=slug)
               .select_related("company").prefetch_related("tools").first())
        if bot is None:
            raise NotFound("No bot with this slug.")
        return bot

    def conversation(self, bot: Bot, conversation_id, *, lock: bool = False) -> ChatConversation:
        try:
            conversation_id = uuid.UUID(str(conversation_id))
        except ValueError:
            raise NotFound("No conversation with this id for this bot.") from None
        queryset = self.get_queryset().filter(bot=bot, pk=conversation_id)
        found = (queryset.select_for_update() if lock else queryset.select_related("bot")).first()
        if found is None:
            raise NotFound("No conversation with this id for this bot.")
        return found


EXAMPLE_START = OpenApiExample("Start a conversation", request_only=True, value={"text": "I'd like to book"})
EXAMPLE_CONTINUE = OpenApiExample("Continue it", request_only=True, value={
    "conversation": "3f2b8c1e-6a4d-4d8e-9c55-0a7f3e2d1b90", "text": "A manicure, please"})
EXAMPLE_END = OpenApiExample("End it (stored as a call)", request_only=True, value={
    "conversation": "3f2b8c1e-6a4d-4d8e-9c55-0a7f3e2d1b90", "end": True})
EXAMPLE_REPLY = OpenApiExample("A reply", response_only=True, value={
    "conversation": "3f2b8c1e-6a4d-4d8e-9c55-0a7f3e2d1b90", "greeting": "Hello! Elegant beauty salon. How can I help?",
    "reply": "Sure. Which service would you like?", "kind": "script", "ended": False,
    "state": {"scenario": "booking", "field": "service", "awaiting": "field", "values": {}, "collected": {},
              "completed": [], "menu": None, "turns": 1, "ended": False, "end_reason": ""},
    "call": None})


class BotChatView(_BotChatMixin, generics.GenericAPIView):
    serializer_class = ChatRequestSerializer

    @extend_schema(parameters=[SLUG_PARAMETER], request=ChatRequestSerializer, responses={200: ChatReplySerializer},
                   examples=[EXAMPLE_START, EXAMPLE_CONTINUE, EXAMPLE_END, EXAMPLE_REPLY], operation_id="bots_chat")
    def post(self, request, slug: str):
        """Send the visitor's text to the bot (starting a conversation, or continuing one) and get its reply.

        404: no such bot or conversation (for this key). 409: the bot is inactive, or the
        conversation has ended. 400: ``text`` empty or over 1000 characters."""
        bot = self.bot(slug)
        form = ChatRequestSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        if not bot.active:
            raise Conflict(f"Bot {bot.slug!r} is inactive: it takes no calls or chats until it is activated.")
        config = BotConfig.from_bot(bot)
        with transaction.atomic():
            greeting = None
            if data.get("conversation"):
                conversation = self.conversation(bot, data["conversation"], lock=True)
                if conversation.ended:
                    raise Conflict("This conversation has ended; start a new one (leave out conversation).")
                chat = ChatSession.from_snapshot(config, conversation.snapshot)
            else:
                conversation = ChatConversation(company=bot.company, bot=bot)
                chat = ChatSession(config)
                chat.external_id = f"chat-{conversation.pk.hex}"  # the stored Call's id names the conversation
                greeting = chat.start().reply or None
            reply, kind, bot_ended = "", "", False
            if data.get("text"):
                turn = chat.send(data["text"])
                reply, kind, bot_ended = turn.reply, turn.kind, turn.ended
            ended = bot_ended or data.get("end", False)
            if ended and chat.stored_call_id is None:
                chat.end("" if bot_ended else "caller_hangup")  # idempotent; spooled if it cannot be stored
            conversation.snapshot = chat.snapshot()
            conversation.state = chat.engine.state()
            if ended:
                conversation.ended_at = timezone.now()
                conversation.call_id = chat.stored_call_id
            conversation.save()
        return Response({
            "conversation": conversation.pk, "greeting": greeting, "reply": reply, "kind": kind, "ended": ended,
            "state": conversation.state, "call": conversation.call_id,
        })


class BotChatConversationView(_BotChatMixin, generics.GenericAPIView):
    serializer_class = ChatConversationSerializer

    @extend_schema(parameters=[SLUG_PARAMETER, CONVERSATION_PARAMETER],
                   responses={200: ChatConversationSerializer}, operation_id="bots_chat_conversation")
    def get(self, request, slug: str, conversation):
        """The conversation so far: its turns, the scenario state, whether it ended and the stored call."""
        found = self.conversation(self.bot(slug), conversation)
        return Response(ChatConversationSerializer(found).data)
