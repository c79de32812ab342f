"""Text conversations held through the API (``POST /api/v1/bots/{slug}/chat/``).

The live-call path stores nothing until hang-up; a chat over HTTP spans many requests,
so its ``ChatSession`` snapshot (pipelines/dialogue/chat.py) lives here between them.
When the conversation ends it is stored like a call (transport ``chat``) and ``call``
points at it.
"""

from __future__ import annotations

import uuid

from django.db import models

from voicebot.models import Bot, Call, Company
from voicebot.tenancy import CompanyScopedManager


class ChatConversation(models.Model):
    """One text conversation with a bot: the engine's snapshot and state between requests."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    company = models.ForeignKey(Company, on_delete=models.CASCADE, related_name="chat_conversations")
    bot = models.ForeignKey(Bot, on_delete=models.CASCADE, related_name="chat_conversations")
    snapshot = models.JSONField(default=dict, help_text="ChatSession.snapshot(): turns and the engine's state.")
    state = models.JSONField(default=dict, blank=True, help_text="The scenario state after the last turn.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    call = models.ForeignKey(Call, on_delete=models.SET_NULL, null=True, blank=True, related_name="+",
                             help_text="The stored call (transport chat), once the conversation ended.")

    company_path = "company"
    objects = CompanyScopedManager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["company", "-created_at"])]

    def __str__(self) -> str:
        return f"Chat {self.pk} with {self.bot_id}"

    @property
    def ended(self) -> bool:
        return self.ended_at is not None
