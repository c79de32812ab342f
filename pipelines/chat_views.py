"""Admin page "Try this bot": staff chat with one of their bots and watch the engine's state.

Thin views over ``ChatSession``; the session's state lives in the Django
session (server side), one conversation per bot. Scoped like the admin: a bot
of a company the user does not staff is "not found".
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from pipelines.config import BotConfig
from pipelines.dialogue.chat import ChatSession
from voicebot.models import Bot

MAX_MESSAGE_CHARS = 1000


def _key(bot: Bot) -> str:
    return f"try_bot:{bot.pk}"


def _session_for(request: HttpRequest, bot: Bot, config: BotConfig) -> ChatSession:
    data = request.session.get(_key(bot))
    if data:
        return ChatSession.from_snapshot(config, data)
    chat = ChatSession(config)
    chat.start()
    return chat


@staff_member_required
@require_http_methods(["GET", "POST"])
def try_bot(request: HttpRequest, pk: int) -> HttpResponse:
    bot = get_object_or_404(Bot.objects.for_user(request.user).select_related("company"), pk=pk)
    config = BotConfig.from_bot(bot)
    chat = _session_for(request, bot, config)
    error = ""
    if request.method == "POST":
        action = request.POST.get("action", "send")
        if action == "restart":
            request.session.pop(_key(bot), None)
            return redirect("try_bot", pk=bot.pk)
        if action == "end":
            call = chat.end("caller_hangup")
            request.session.pop(_key(bot), None)
            if call is not None:
                messages.success(request, f"Chat stored as call {call.pk} (transport chat).")
            return redirect("try_bot", pk=bot.pk)
        text = request.POST.get("message", "").strip()
        if not text:
            error = "Type a message first."
        elif len(text) > MAX_MESSAGE_CHARS:
            error = f"Messages are limited to {MAX_MESSAGE_CHARS} characters (yours has {len(text)})."
        else:
            turn = chat.send(text)
            if turn.ended and chat.stored_call_id is None:
                chat.end()  # the bot said goodbye (or transferred): store it like a call
            request.session[_key(bot)] = chat.snapshot()
            return redirect("try_bot", pk=bot.pk)
    request.session[_key(bot)] = chat.snapshot()
    context = {
        **admin.site.each_context(request),
        "title": f"Try {bot.name}",
        "bot": bot,
        "turns": chat.transcript,
        "state": chat.engine.state(),
        "error": error,
        "opts": Bot._meta,
    }
    return render(request, "pipelines/try_bot.html", context)
