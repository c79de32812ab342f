"""Admin of calls: records, read-only, with the transcript shown as a conversation."""

from __future__ import annotations

from django.contrib import admin
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404
from django.template.loader import render_to_string
from django.urls import path, reverse
from django.utils.html import format_html

from voicebot.admin_scoping import CompanyScopedAdmin
from voicebot.models import Call, CallTurn


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

    list_display = ("started_at", "company", "bot", "transport", "direction", "from_number", "to_number",
                    "duration_display", "end_reason", "status")
    list_filter = ("company", "bot", "transport", "status", "end_reason", "started_at")
    search_fields = ("from_number", "to_number", "external_id", "turns__text")
    list_select_related = ("company", "bot")
    date_hierarchy = "started_at"
    inlines = [CallTurnInline]
    readonly_fields = ("company", "bot", "transport", "direction", "external_id", "from_number", "to_number",
                       "status", "started_at", "ended_at", "duration_display", "end_reason", "scenario",
                       "recording_player", "conversation", "replaced_sentences", "collected_fields", "metrics",
                       "analytics", "answered_at", "variables")
    fieldsets = (
        (None, {"fields": ("company", "bot", "transport", "direction", "external_id", "from_number", "to_number",
                           "variables")}),
        ("Outcome", {"fields": ("status", "started_at", "answered_at", "ended_at", "duration_display", "end_reason", "scenario",
                                "collected_fields")}),
        ("Conversation", {"fields": ("recording_player", "conversation", "replaced_sentences")}),
        ("Measurements", {"classes": ("collapse",), "fields": ("metrics", "analytics")}),
    )

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        # Viewing is allowed through the view permission; nothing on a call is editable.
        return False

    def get_urls(self):
        custom = [
            path("<int:pk>/recording/", self.admin_site.admin_view(self.recording_view), name="voicebot_call_recording"),
        ]
        return custom + super().get_urls()

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

    @admin.display(description="duration")
    def duration_display(self, obj):
        seconds = obj.duration_sec
        if seconds is None:
            return "-"
        return f"{int(seconds // 60)}:{int(seconds % 60):02d}"

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
        return render_to_string("admin/voicebot/call_transcript.html", {"turns": obj.turns.all()})
