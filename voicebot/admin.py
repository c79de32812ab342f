"""Django admin for agency staff: each user sees only the companies assigned to them."""

from __future__ import annotations

from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.http import Http404
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from voicebot import asterisk_setup, call_links, outbound_calls
from voicebot.admin_calls import CallAdmin  # noqa: F401  registers the calls' admin
from voicebot.admin_scoping import CompanyScopedAdmin, CompanyScopedInline
from voicebot.forms import BotAdminForm, PlaceCallForm
from voicebot.models import ApiKey, Bot, BotTool, Company, PhoneNumber


@admin.register(Company)
class CompanyAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "timezone", "country", "default_language", "bot_count")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}
    filter_horizontal = ("staff",)

    def get_queryset(self, request):
        return Company.objects.for_user(request.user).annotate(num_bots=Count("bots"))

    def get_fields(self, request, obj=None):
        fields = ["name", "slug", "timezone", "country", "default_language", "report_recipients", "max_lines"]
        if request.user.is_superuser:
            fields.append("staff")
        return fields

    def get_readonly_fields(self, request, obj=None):
        # The lines a client bought: set by the agency's superusers, seen by its staff.
        return () if request.user.is_superuser else ("max_lines",)

    def has_add_permission(self, request):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser

    @admin.display(description="bots", ordering="num_bots")
    def bot_count(self, obj):
        return obj.num_bots


class PhoneNumberInline(CompanyScopedInline):
    model = PhoneNumber
    fields = ("number", "provider", "label", "active")
    fk_name = "bot"


class BotToolInline(admin.StackedInline):
    model = BotTool
    extra = 0
    fields = ("name", "description", "url", "parameters", "secret", "requires_confirmation", "speak_response",
              "timeout_sec", "active")
    classes = ("collapse",)


@admin.register(Bot)
class BotAdmin(CompanyScopedAdmin):
    form = BotAdminForm
    list_display = ("name", "company", "slug", "active", "language", "llm_model_display", "use_knowledge")
    list_filter = ("company", "active", "use_knowledge")
    search_fields = ("name", "slug", "company__name")
    prepopulated_fields = {"slug": ("name",)}
    list_select_related = ("company",)
    inlines = [PhoneNumberInline, BotToolInline]
    fieldsets = (
        (None, {"fields": ("company", "name", "slug", "active", "language")}),
        ("Conversation", {"fields": ("greeting", "system_prompt", "fallback_phrase", "scenarios",
                                     "max_turns", "silence_timeout_sec", "transfer_number")}),
        ("Voice and models", {"fields": ("voice", "stt_model", "llm_model", "temperature", "max_tokens")}),
        ("Knowledge", {"fields": ("use_knowledge", "answer_style", "knowledge_top_k", "knowledge_score_threshold")}),
        ("Calling out", {"fields": ("voicemail_message", "outbound_greeting_wait_sec")}),
        ("Test call", {"fields": ("test_call",)}),  # live calls: browser call page on the runner
    )
    readonly_fields = ("test_call",)

    @admin.display(description="Talk to this bot")
    def test_call(self, obj):
        """A button that mints a fresh single-use link for the user who clicks it (``test_call_view``)."""
        if obj is None or not obj.pk:
            return "Save the bot first."
        url = reverse("admin:voicebot_bot_test_call", args=[obj.pk])
        return format_html('<a class="button" href="{}" target="_blank" rel="noopener">Test call</a>', url)

    def get_urls(self):
        view = self.admin_site.admin_view(self.test_call_view)
        place = self.admin_site.admin_view(self.place_call_view)
        return [path("<int:object_id>/test-call/", view, name="voicebot_bot_test_call"),
                path("<int:object_id>/place-call/", place, name="voicebot_bot_place_call"), *super().get_urls()]

    def place_call_view(self, request, object_id: int):
        """"Call a number": the bot calls someone now (``outbound_calls.request_call``)."""
        bot = self.get_object(request, str(object_id))  # scoped: other companies' bots are not found
        if bot is None or not self.has_change_permission(request, bot):
            raise Http404("No such bot.")
        numbers = PhoneNumber.objects.filter(company=bot.company, active=True,
                                             provider__in=outbound_calls.DIALING_PROVIDERS).order_by("number")
        form = PlaceCallForm(request.POST or None, numbers=numbers)
        if request.method == "POST" and form.is_valid():
            try:
                call = outbound_calls.request_call(bot=bot, to=form.cleaned_data["to"],
                                                   from_number=form.cleaned_data["from_number"],
                                                   variables=form.cleaned_data["variables"])
            except outbound_calls.CallRequestError as exc:
                form.add_error("from_number" if exc.field == "from" else "to" if exc.field == "to" else None, str(exc))
            else:
                self.message_user(request, f"Calling {call.to_number} from {call.from_number}: the call is queued.",
                                  messages.SUCCESS)
                return redirect("admin:voicebot_call_change", call.pk)
        context = {**self.admin_site.each_context(request), "title": f"Call a number: {bot.name}", "bot": bot,
                   "form": form, "opts": self.model._meta, "original": bot}
        return TemplateResponse(request, "admin/voicebot/bot/place_call.html", context)

    def test_call_view(self, request, object_id: int):
        """Redirect to the runner's call page with a link good for one call by this staff user."""
        bot = self.get_object(request, str(object_id))  # scoped: other companies' bots are not found
        if bot is None or not self.has_view_permission(request, bot):
            raise Http404("No such bot.")
        calls = request.build_absolute_uri(reverse("admin:voicebot_call_changelist"))  # linked after hang-up
        return redirect(call_links.call_page_url(bot.slug, request.user.pk, calls_url=calls))

    @admin.display(description="LLM")
    def llm_model_display(self, obj):
        return obj.llm_model or "default"

    def save_formset(self, request, form, formset, change):
        # Numbers added inline belong to the bot's company.
        for inline_form in formset.forms:
            if isinstance(inline_form.instance, PhoneNumber) and not inline_form.instance.company_id:
                inline_form.instance.company = form.instance.company
        super().save_formset(request, form, formset, change)


@admin.register(PhoneNumber)
class PhoneNumberAdmin(CompanyScopedAdmin):
    list_display = ("number", "company", "bot", "provider", "active", "label")
    list_filter = ("company", "provider", "active")
    search_fields = ("number", "label", "bot__name")
    list_select_related = ("company", "bot")
    readonly_fields = ("provider_setup",)

    @admin.display(description="Provider set-up")
    def provider_setup(self, obj):
        """What to paste into the provider's console for this number (README, "Security")."""
        if obj is None or not obj.pk:
            return "Save the number first."
        base = settings.RUNNER_PUBLIC_URL.rstrip("/")
        ws_base = "wss" + base[5:] if base.startswith("https") else "ws" + base[4:]
        setup = {
            "twilio": f"Voice webhook (POST): {base}/telephony/twilio/voice",
            "telnyx": f"TeXML application voice URL (POST): {base}/telephony/telnyx/voice",
            "plivo": f"Application answer URL (POST): {base}/telephony/plivo/answer",
            "daily": f"Pinless dial-in room_creation_api: {base}/telephony/daily/dialin",
            "exotel": f"Voicebot applet URL (keep it secret): {ws_base}/telephony/exotel/media/{obj.stream_secret}",
        }
        if obj.provider == PhoneNumber.Provider.ASTERISK:
            return self._asterisk_setup(obj)
        return setup.get(obj.provider, "")

    @staticmethod
    def _asterisk_setup(obj):
        """chan_websocket (websocket_client.conf URI + dial line) and AudioSocket (UUID + dial lines)."""
        uri = asterisk_setup.websocket_uri(settings.RUNNER_PUBLIC_URL)
        host = settings.ASTERISK_AUDIOSOCKET_HOST
        if host in ("0.0.0.0", "::", ""):
            host = "RUNNER_HOST"
        return format_html(
            "chan_websocket (Asterisk 20.16 / 22.6+), websocket_client.conf [{}]: uri = {}<br>"
            "Dialplan (keep it secret): <code>{}</code><br>"
            "AudioSocket UUID (keep it secret): <code>{}</code><br>Dialplan:<br><code>{}</code>",
            asterisk_setup.WEBSOCKET_CONNECTION, uri,
            asterisk_setup.websocket_dial(obj.number, obj.stream_secret),
            asterisk_setup.audiosocket_uuid(obj.stream_secret),
            asterisk_setup.audiosocket_dial(obj.number, obj.stream_secret, host,
                                            settings.ASTERISK_AUDIOSOCKET_PORT),
        )


@admin.register(ApiKey)
class ApiKeyAdmin(CompanyScopedAdmin):
    list_display = ("name", "scope", "access", "key_prefix", "created_at", "last_used_at", "revoked_at")
    list_filter = ("company", "access")
    fields = ("company", "name", "access", "key_prefix", "created_at", "last_used_at", "revoked_at")
    readonly_fields = ("key_prefix", "created_at", "last_used_at")
    actions = ["revoke"]

    @admin.display(description="acts for", ordering="company__name")
    def scope(self, obj):
        return obj.company or "every company (agency key)"

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        if "company" in form.base_fields:
            # Only superusers may issue agency keys (no company: every company).
            form.base_fields["company"].required = not request.user.is_superuser
            if request.user.is_superuser:
                form.base_fields["company"].empty_label = "(none: an agency key, for every company)"
        return form

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        if obj.company_id is None and not request.user.is_superuser:
            raise PermissionDenied("Only superusers may issue agency keys.")
        key, raw = ApiKey.issue(obj.company, obj.name, access=obj.access)
        obj.pk, obj.key_prefix, obj.key_hash = key.pk, key.key_prefix, key.key_hash
        messages.warning(request, f"Copy this API key now; it will not be shown again: {raw}")

    @admin.action(description="Revoke selected keys")
    def revoke(self, request, queryset):
        from django.utils import timezone

        count = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        messages.success(request, f"Revoked {count} key(s).")
