"""Admin of the knowledge base: upload many files, watch ingestion, see why one failed."""

from __future__ import annotations

from django.contrib import admin, messages
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.utils.html import format_html

from knowledge import services
from knowledge.forms import UploadForm
from knowledge.models import KnowledgeDocument
from voicebot.admin_scoping import CompanyScopedAdmin
from voicebot.models import Bot

STATUS_COLOURS = {"pending": "#777", "processing": "#b26b00", "ready": "#2e7d32", "failed": "#c62828"}


@admin.register(KnowledgeDocument)
class KnowledgeDocumentAdmin(CompanyScopedAdmin):
    list_display = ("name", "company", "bot_names", "file_type", "status_badge", "progress_bar", "pages",
                    "chunk_count", "error_short", "updated_at")
    list_filter = ("company", "bots", "status", "file_type")
    search_fields = ("name", "error")
    list_select_related = ("company",)
    actions = ["reingest_action", "clear_bot_action"]
    fields = ("company", "bots", "name", "file", "file_type", "size_bytes", "status", "progress", "error", "pages",
              "chunk_count", "embedding_model", "content_hash", "created_at", "updated_at", "ingested_at")
    readonly_fields = ("company", "name", "file", "file_type", "size_bytes", "status", "progress", "error", "pages",
                       "chunk_count", "embedding_model", "content_hash", "created_at", "updated_at", "ingested_at")
    filter_horizontal = ("bots",)

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("bots")

    # --- upload (the "add" page) ------------------------------------------------------------
    def add_view(self, request, form_url="", extra_context=None):
        if not self.has_add_permission(request):
            return redirect("admin:knowledge_knowledgedocument_changelist")
        form = UploadForm(request.POST or None, request.FILES or None, user=request.user)
        if request.method == "POST" and form.is_valid():
            results = services.upload_documents(form.cleaned_data["company"], form.cleaned_data["files"],
                                                form.cleaned_data["bots"])
            for result in results:
                level = {"queued": messages.SUCCESS, "replaced": messages.SUCCESS, "duplicate": messages.WARNING}
                # Not message_user: it capitalises, and file names are case-sensitive.
                messages.add_message(request, level.get(result.outcome, messages.ERROR), result.message)
            return redirect("admin:knowledge_knowledgedocument_changelist")
        context = {
            **self.admin_site.each_context(request),
            "title": "Upload knowledge files",
            "form": form,
            "opts": self.model._meta,
            "has_view_permission": self.has_view_permission(request),
            **(extra_context or {}),
        }
        return TemplateResponse(request, "admin/knowledge/knowledgedocument/upload.html", context)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        field = super().formfield_for_manytomany(db_field, request, **kwargs)
        obj_id = request.resolver_match.kwargs.get("object_id") if request.resolver_match else None
        if db_field.name == "bots" and obj_id:
            document = self.get_queryset(request).filter(pk=obj_id).first()
            if document is not None:  # only the document's own company's bots
                field.queryset = field.queryset.filter(company_id=document.company_id)
        return field

    def changelist_view(self, request, extra_context=None):
        busy = self.get_queryset(request).filter(status__in=["pending", "processing"]).exists()
        return super().changelist_view(request, {**(extra_context or {}), "auto_refresh": busy})

    # --- columns --------------------------------------------------------------------------
    @admin.display(description="bots")
    def bot_names(self, obj):
        return ", ".join(b.name for b in obj.bots.all()) or "—"

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj):
        return format_html('<b style="color:{}">{}</b>', STATUS_COLOURS.get(obj.status, "#000"),
                           obj.get_status_display())

    @admin.display(description="progress")
    def progress_bar(self, obj):
        return format_html('<progress max="100" value="{}" title="{}%"></progress> {}%', obj.progress,
                           obj.progress, obj.progress)

    @admin.display(description="error")
    def error_short(self, obj):
        if not obj.error:
            return ""
        short = obj.error if len(obj.error) <= 120 else obj.error[:117] + "…"
        return format_html('<span style="color:#c62828" title="{}">{}</span>', obj.error, short)

    # --- actions --------------------------------------------------------------------------
    @admin.action(description="Ingest selected documents again")
    def reingest_action(self, request, queryset):
        count = services.reingest(queryset)
        self.message_user(request, f"{count} document(s) queued for ingestion.", messages.SUCCESS)

    @admin.action(description="Clear the filtered bot's knowledge (filter by bot first)")
    def clear_bot_action(self, request, queryset):
        bot_id = request.GET.get("bots__id__exact")
        bot = Bot.objects.for_user(request.user).filter(pk=bot_id).first() if bot_id else None
        if bot is None:
            self.message_user(request, "Filter the list by a bot first (right-hand filter 'By bots').",
                              messages.ERROR)
            return
        result = services.clear_bot_knowledge(bot)
        self.message_user(request, f"{bot.name}: {result['deleted']} document(s) deleted, "
                                   f"{result['unlinked']} kept for other bots.", messages.SUCCESS)
