"""Admin of calls: records, read-only, read the way staff review a call.

The page opens with what the call came to (collected fields here; postcall's admin adds
summary, outcome and lead above them), then the transcript with each reply's timing, the
passages a knowledge reply used and any sentence the fact check replaced, the recording,
and last the call's identifiers. Every time is shown in the company's time zone, labelled
with the zone's name. The list keeps to a few narrow columns so that it fits 1366 px.
"""

from __future__ import annotations

import re

from django.contrib import admin
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404
from django.template.loader import render_to_string
from django.urls import path, reverse
from django.utils.html import format_html

from voicebot.admin_scoping import CompanyScopedAdmin
from voicebot.models import Call, CallTurn


def local_time(company, value, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    """``value`` in the company's time zone, with the zone's name: "2026-12-01 14:05:03 Europe/Berlin"."""
    if value is None:
        return "-"
    return f"{value.astimezone(company.tz):{fmt}} {company.timezone}"


def field_label(name: str, bot=None) -> str:
    """A collected field's label: its scenario's ``label`` when it has one, else its name in words."""
    for scenario in (getattr(bot, "scenarios", None) or []):
        for item in scenario.get("collect_fields", []) if isinstance(scenario, dict) else []:
            if item.get("name") == name and item.get("label"):
                return str(item["label"])
    words = str(name).replace("_", " ").strip()
    return words[:1].upper() + words[1:]


def readable_value(value) -> str:
    if isinstance(value, dict) and "value" in value:
        value = value["value"]
    if isinstance(value, (list, tuple)):
        return ", ".join(readable_value(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}: {readable_value(v)}" for k, v in value.items())
    if isinstance(value, bool):
        return "yes" if value else "no"
    return "-" if value in (None, "") else str(value)


def fields_rows(fields: dict, bot=None) -> list[dict]:
    """``{name: value}`` (or ``{name: {"value", "source"}}``) as rows: label, value, source."""
    return [{"label": field_label(name, bot), "value": readable_value(item),
             "source": item.get("source", "") if isinstance(item, dict) else ""}
            for name, item in (fields or {}).items()]


def passage_rows(passages) -> list[dict]:
    rows = []
    for item in passages or []:
        if isinstance(item, dict):
            text = str(item.get("text", ""))
            rows.append({"text": text if len(text) <= 400 else text[:397] + "…", "score": item.get("score"),
                         "document": item.get("document") or "", "document_id": item.get("document_id")})
        elif item:
            text = str(item)
            rows.append({"text": text if len(text) <= 400 else text[:397] + "…", "score": None, "document": "",
                         "document_id": None})
    return rows


def _words(text) -> str:
    return " ".join(re.findall(r"[a-z0-9']+", str(text or "").lower()))


def transcript_items(call: Call, turns: list[CallTurn]) -> list[dict]:
    """Each turn with what the call's metrics say about it: timing parts, passages used, replacements.

    ``metrics["explanations"]``: what a reply was based on, by the turn's index (``passages``,
    ``grounding``, ``fallback``; a live call's ``metrics["reply_explanations"]``, matched by the
    caller's words before the reply); ``metrics["grounding"]["replaced"]``: matched to the bot turn
    that said the replacement; ``metrics["replies"]``: the live call's timing parts, in the order
    of the timed bot replies.
    """
    metrics = call.metrics or {}
    explanations = metrics.get("explanations") or {}
    explanations = explanations if isinstance(explanations, dict) else {}
    replaced = [r for r in ((metrics.get("grounding") or {}).get("replaced") or []) if isinstance(r, dict)]
    timings = [r for r in metrics.get("replies") or [] if isinstance(r, dict)]
    timed_bot_turns = [t for t in turns if t.role == CallTurn.Role.BOT and t.latency_ms is not None]
    timing_of = dict(zip((t.index for t in timed_bot_turns), timings)) if len(timings) == len(timed_bot_turns) else {}
    by_question = [w for w in metrics.get("reply_explanations") or [] if isinstance(w, dict)]
    items, placed, asked = [], set(), ""
    for turn in turns:
        why = explanations.get(str(turn.index)) or explanations.get(turn.index) or {}
        why = why if isinstance(why, dict) else {}
        if turn.role == CallTurn.Role.CALLER:
            asked = _words(turn.text)
        elif not why and asked and by_question:  # a live call's: matched by the caller's words before it
            found = next((w for w in by_question if _words(w.get("question", "")) and
                          _words(w.get("question", "")) in asked), None)
            if found is not None:
                by_question.remove(found)
                why = found
            asked = ""
        item = {"turn": turn, "passages": [], "replaced": [], "fallback": "", "timing": None}
        if turn.role == CallTurn.Role.BOT:
            item["passages"] = passage_rows(why.get("passages"))
            item["fallback"] = str(why.get("fallback") or "")
            own = [r for r in why.get("grounding") or [] if isinstance(r, dict)]
            for number, r in enumerate(replaced):
                if number not in placed and r.get("said") and str(r["said"]) in (turn.text or ""):
                    placed.add(number)
                    if not any(o.get("tried") == r.get("tried") for o in own):
                        own.append(r)
            item["replaced"] = own
            parts = timing_of.get(turn.index) or {}
            labels = (("stt_ms", "speech to text"), ("llm_ttfb_ms", "LLM first token"),
                      ("tts_ttfb_ms", "first audio"))
            item["timing"] = ", ".join(f"{label} {parts[key]} ms" for key, label in labels
                                       if isinstance(parts.get(key), (int, float))) or None
        items.append(item)
    return items


class CallTurnInline(admin.TabularInline):
    model = CallTurn
    fields = ("index", "role", "text", "start_ms", "end_ms", "latency_ms", "interrupted")
    readonly_fields = fields
    extra = 0
    can_delete = False
    classes = ("collapse",)
    verbose_name_plural = "turns (raw)"

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Call)
class CallAdmin(CompanyScopedAdmin):
    """Calls are records: read-only, with the transcript shown as a conversation."""

    list_display = ("time_local", "bot", "from_number", "duration_display")
    list_display_links = ("time_local",)
    list_filter = ("company", "bot", "transport", "status", "end_reason", "started_at")
    search_fields = ("from_number", "to_number", "external_id", "turns__text")
    list_select_related = ("company", "bot")
    date_hierarchy = "started_at"
    inlines = [CallTurnInline]
    readonly_fields = ("company", "bot", "transport", "direction", "external_id", "from_number", "to_number",
                       "status", "started_local", "ended_local", "duration_display", "end_reason", "scenario",
                       "recording_player", "conversation", "replaced_sentences", "collected_table", "metrics",
                       "analytics", "answered_local", "variables_table")
    fieldsets = (
        ("What the call came to", {"fields": ("collected_table",)}),
        ("Conversation", {"fields": ("conversation", "replaced_sentences", "recording_player")}),
        ("Call", {"fields": ("company", "bot", "transport", "direction", "external_id", "from_number", "to_number",
                             "status", "started_local", "answered_local", "ended_local", "duration_display",
                             "end_reason", "scenario", "variables_table")}),
        ("Measurements", {"classes": ("collapse",), "fields": ("metrics", "analytics")}),
    )

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        # Viewing is allowed through the view permission; nothing on a call is editable.
        return False

    def get_urls(self):
        recording = self.admin_site.admin_view(self.recording_view)
        custom = [path("<int:pk>/recording/", recording, name="voicebot_call_recording")]
        return custom + super().get_urls()

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra = dict(extra_context or {})
        call = self.get_object(request, object_id)  # scoped: another company's call is not found
        if call is not None:  # the heading's time in the company's zone too (Call's str is UTC)
            who = call.from_number or call.get_transport_display()
            extra.setdefault("subtitle", f"Call {call.pk} from {who} at "
                                         f"{local_time(call.company, call.started_at, '%Y-%m-%d %H:%M')}")
        return super().change_view(request, object_id, form_url, extra_context=extra)

    def recording_view(self, request, pk):
        """The recording file, only for staff who may see this call (recordings are private)."""
        if not self.has_view_permission(request):
            raise Http404
        call = get_object_or_404(self.get_queryset(request), pk=pk)
        if not call.recording:
            raise Http404("This call has no recording.")
        try:
            handle = call.recording.open("rb")
        except FileNotFoundError:
            raise Http404("The recording file is missing.") from None
        return FileResponse(handle, content_type="audio/wav", filename=f"call-{call.pk}.wav")

    @admin.display(description="time", ordering="started_at")
    def time_local(self, obj):
        local = obj.started_at.astimezone(obj.company.tz)
        return format_html('{} <small class="vb-zone">{}</small>', f"{local:%d %b %H:%M}", obj.company.timezone)

    @admin.display(description="started")
    def started_local(self, obj):
        return local_time(obj.company, obj.started_at)

    @admin.display(description="answered")
    def answered_local(self, obj):
        return local_time(obj.company, obj.answered_at)

    @admin.display(description="ended")
    def ended_local(self, obj):
        return local_time(obj.company, obj.ended_at)

    @admin.display(description="duration")
    def duration_display(self, obj):
        seconds = obj.duration_sec
        if seconds is None:
            return "-"
        return f"{int(seconds // 60)}:{int(seconds % 60):02d}"

    @admin.display(description="collected fields")
    def collected_table(self, obj):
        return render_to_string("admin/voicebot/call/fields_table.html",
                                {"rows": fields_rows(obj.collected_fields, obj.bot),
                                 "empty": "The scenario engine collected nothing on this call."})

    @admin.display(description="variables")
    def variables_table(self, obj):
        return render_to_string("admin/voicebot/call/fields_table.html",
                                {"rows": fields_rows(obj.variables), "empty": "-"})

    @admin.display(description="recording")
    def recording_player(self, obj):
        if not obj.recording:
            return "No recording"
        url = reverse("admin:voicebot_call_recording", args=[obj.pk])
        return format_html('<audio controls preload="none" src="{}"></audio> <a href="{}">download</a>', url, url)

    @admin.display(description="replaced by the fact check")
    def replaced_sentences(self, obj):
        """What the language model tried to say that was not grounded in the sources, and what was said instead."""
        replaced = ((obj.metrics or {}).get("grounding") or {}).get("replaced") or []
        return render_to_string("admin/voicebot/call_replaced.html", {"replaced": replaced})

    @admin.display(description="transcript")
    def conversation(self, obj):
        turns = list(obj.turns.all())
        return render_to_string("admin/voicebot/call_transcript.html",
                                {"items": transcript_items(obj, turns), "turns": turns,
                                 "started": local_time(obj.company, obj.started_at)})
