"""Admin page "Try this bot": staff chat with one of their bots and watch the engine's state.

Thin views over ``ChatSession``; the session's state lives in the Django
session (server side), one conversation per bot. Scoped like the admin: a bot
of a company the user does not staff is "not found".
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html
from django.views.decorators.http import require_http_methods

from pipelines.config import BotConfig
from pipelines.dialogue.chat import ChatSession
from voicebot.models import Bot, Call

MAX_MESSAGE_CHARS = 1000


def _key(bot: Bot) -> str:
    return f"try_bot:{bot.pk}"


def _stored(request: HttpRequest, call, how: str) -> None:
    """Say where the stored chat is: a link to its call in admin."""
    if call is None:
        messages.warning(request, "The chat could not be stored now; it was spooled and will be stored later.")
        return
    messages.success(request, format_html('{} <a href="{}">Call {}</a> (transport chat).', how,
                                          reverse("admin:voicebot_call_change", args=[call.pk]), call.pk))


def _document_url(document_id) -> str:
    if not document_id:
        return ""
    try:
        return reverse("admin:knowledge_knowledgedocument_change", args=[document_id])
    except NoReverseMatch:
        return ""


def _explained(turns: list[dict]) -> list[dict]:
    """The transcript with each reply's passages linked to their documents in admin."""
    for turn in turns:
        for passage in turn["why"].get("passages", ()):
            passage["url"] = _document_url(passage.get("document_id"))
    return turns


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
            if not any(t.role == "caller" for t in chat.turns):
                request.session.pop(_key(bot), None)
                messages.info(request, "Nothing to store: the chat had no message yet.")
                return redirect("try_bot", pk=bot.pk)
            call = chat.end("caller_hangup")
            request.session.pop(_key(bot), None)
            _stored(request, call, "Chat stored as")
            return redirect("try_bot", pk=bot.pk)
        text = request.POST.get("message", "").strip()
        if not text:
            error = "Type a message first."
        elif len(text) > MAX_MESSAGE_CHARS:
            error = f"Messages are limited to {MAX_MESSAGE_CHARS} characters (yours has {len(text)})."
        else:
            turn = chat.send(text)
            if turn.ended and chat.stored_call_id is None:
                # the bot said goodbye (or transferred): store it like a call
                _stored(request, chat.end(), "The bot ended the chat; it is stored as")
            request.session[_key(bot)] = chat.snapshot()
            return redirect("try_bot", pk=bot.pk)
    request.session[_key(bot)] = chat.snapshot()
    context = {
        **admin.site.each_context(request),
        "title": f"Try {bot.name}",
        "bot": bot,
        "turns": _explained(chat.transcript),
        "state": chat.engine.state(),
        "last_why": next((t["why"] for t in reversed(chat.transcript) if t["role"] == "bot" and t["why"]), {}),
        "stored_call_url": reverse("admin:voicebot_call_change", args=[chat.stored_call_id])
        if chat.stored_call_id else "",
        "error": error,
        "opts": Bot._meta,
    }
    return render(request, "pipelines/try_bot.html", context)


STORED_CALL_WAIT = """<!doctype html><html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="2">
<title>Storing the call</title></head><body style="font-family:system-ui,sans-serif;max-width:36rem;margin:3rem auto">
<p>Call <code>{}</code> is not stored yet: the runner stores a call once it has ended (a browser call a few
seconds after hang-up). This page reloads until it is there.</p><p><a href="{}">All calls</a></p></body></html>"""


@staff_member_required
@require_http_methods(["GET"])
def stored_call(request: HttpRequest) -> HttpResponse:
    """The admin page of the call with external id ``?q=`` (the browser call page links here after hang-up):
    a call of a company the user does not staff is never found; one not stored yet is waited for."""
    external_id = request.GET.get("q", "").strip()
    if not external_id or len(external_id) > 200:
        return HttpResponseBadRequest("Which call? Give its id as ?q=.")
    call = Call.objects.for_user(request.user).filter(external_id=external_id).only("pk").first()
    if call is not None:
        return redirect("admin:voicebot_call_change", call.pk)
    return HttpResponse(format_html(STORED_CALL_WAIT, external_id, reverse("admin:voicebot_call_changelist")),
                        status=404)
