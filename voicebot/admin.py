"""Django admin for agency staff: each user sees only the companies assigned to them."""

from __future__ import annotations

import httpx
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import FieldDoesNotExist, PermissionDenied
from django.db.models import Count
from django.http import Http404
from django.shortcuts import redirect
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, path, reverse
from django.utils.html import format_html

from voicebot import asterisk_setup, call_links, model_choices, outbound_calls
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
    verbose_name_plural = "tools (HTTP actions; a scenario's on_complete calls the tool of the same name)"


# --- What the bot page checks -------------------------------------------------------------
# Knowledge documents and lead-scoring rules live in other apps, which voicebot does not
# import: they are reached through the bot's reverse relations (``knowledge_documents``,
# ``lead_scoring``) and their models found from those.

RUNNER_CHECK_TIMEOUT_SEC = 0.4


def related_model(name: str):
    """The model behind one of Bot's reverse relations, or None when its app is not installed."""
    try:
        return Bot._meta.get_field(name).related_model
    except FieldDoesNotExist:
        return None


def bot_documents(bot: Bot):
    """The bot's knowledge documents (of its own company), newest first."""
    model = related_model("knowledge_documents")
    if model is None or bot.pk is None:
        return []
    return list(model.objects.for_company(bot.company_id).filter(bots=bot).order_by("name"))


def lead_scoring_of(bot: Bot):
    """(rules, own): the bot's lead-scoring rules, or the defaults (an unsaved row) when it has none."""
    model = related_model("lead_scoring")
    if model is None:
        return None, False
    rules = model.objects.filter(bot=bot, bot__company=bot.company_id).first() if bot.pk else None
    return (rules, True) if rules is not None else (model(bot=bot), False)


def runner_health_url() -> str:
    """The runner the Test call button opens (``RUNNER_CALL_PAGE_URL``, as ``demo --runner-port`` sets it),
    else the one at RUNNER_HOST:RUNNER_PORT."""
    call_page = getattr(settings, "RUNNER_CALL_PAGE_URL", "")
    if call_page:
        return f"{call_page.rstrip('/')}/healthz"
    host = settings.RUNNER_HOST
    if host in ("", "0.0.0.0", "::", "[::]"):
        host = "127.0.0.1"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{settings.RUNNER_PORT}/healthz"


def runner_warning() -> str:
    """Why live calls cannot reach the call runner now, or '' when it answers (a short timeout)."""
    url = runner_health_url()
    try:
        response = httpx.get(url, timeout=RUNNER_CHECK_TIMEOUT_SEC)
    except httpx.HTTPError as exc:
        return (f"The call runner is not reachable at {url} ({type(exc).__name__}): calls and the Test call button "
                "will not work until it runs (manage.py runbots, or make demo).")
    if response.status_code == 503:
        return f"The call runner at {url} is starting (loading models): calls work once it is ready."
    if response.status_code != 200:
        return f"The call runner at {url} answered {response.status_code}: calls may not work."
    return ""


def setup_warnings(bot: Bot, *, llm: model_choices.LlmModels | None = None, check_runner: bool = True) -> list[str]:
    """What would make this bot misbehave on its next call, in words staff can act on."""
    warnings = []
    if bot.use_knowledge:
        documents = bot_documents(bot)
        ready = [d for d in documents if d.status == "ready"]
        if not ready:
            state = (f"its {len(documents)} document(s) are not ready ("
                     + ", ".join(f"{d.name}: {d.get_status_display().lower()}" for d in documents) + ")"
                     if documents else "no document is linked to it")
            warnings.append(f"Answer from documents is on but {state}: questions get the fallback phrase. "
                            "Upload a document for this bot, or wait until it is ready.")
    tools = {tool.name: tool for tool in bot.tools.all()} if bot.pk else {}
    for scenario in bot.scenarios or []:
        event = scenario.get("on_complete") if isinstance(scenario, dict) else None
        if not event:
            continue
        tool = tools.get(event)
        if tool is None:
            warnings.append(f"Scenario '{scenario.get('name')}' ends with on_complete: {event}, but this bot has no "
                            f"tool named {event}: what the caller gives is not sent anywhere. Add a tool of that "
                            f"name below (have: {', '.join(sorted(tools)) or 'none'}).")
        elif not tool.active:
            warnings.append(f"Scenario '{scenario.get('name')}' ends with on_complete: {event}, but the tool {event} "
                            "is inactive: nothing is sent. Tick its Active box below.")
    if bot.llm_model:
        llm = llm or model_choices.llm_models()
        if llm.reachable and model_choices.check_llm(bot.llm_model, llm).error:
            warnings.append(model_choices.check_llm(bot.llm_model, llm).error)
        elif not llm.reachable:
            warnings.append(f"The language model server at {llm.base_url} does not answer: replies will be the "
                            "fallback phrase until it runs.")
    if check_runner and (runner := runner_warning()):
        warnings.append(runner)
    return warnings


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
        ("Conversation", {"fields": ("greeting", "system_prompt", "fallback_phrase", "scenarios", "try_scenarios",
                                     "max_turns", "silence_timeout_sec", "transfer_number")}),
        ("Voice and models", {"fields": ("voice", "stt_model", "llm_model", "temperature", "max_tokens")}),
        ("Knowledge", {"fields": ("use_knowledge", "answer_style", "knowledge_top_k", "knowledge_score_threshold",
                                  "documents_list")}),
        ("Lead scoring", {"fields": ("lead_scoring_summary",)}),
        ("Calling out", {"fields": ("voicemail_message", "outbound_greeting_wait_sec")}),
        ("Test call", {"fields": ("test_call",)}),  # live calls: browser call page on the runner
    )
    readonly_fields = ("test_call", "try_scenarios", "documents_list", "lead_scoring_summary")

    @admin.display(description="Try it")
    def try_scenarios(self, obj):
        if obj is None or not obj.pk:
            return "Save the bot first, then try its scenarios in a chat."
        return format_html('<a class="button" href="{}">Try this scenario in chat</a> '
                           '<span class="help">A text chat with this bot as saved: the same rules, scenarios and '
                           'knowledge as a call.</span>', reverse("try_bot", args=[obj.pk]))

    @admin.display(description="Documents")
    def documents_list(self, obj):
        documents = bot_documents(obj) if obj is not None and obj.pk else []
        return render_to_string("admin/voicebot/bot/documents.html", {
            "bot": obj, "documents": [(d, _admin_url("change", d)) for d in documents],
            "add_url": _admin_url("add", related_model("knowledge_documents")),
        })

    @admin.display(description="Rules")
    def lead_scoring_summary(self, obj):
        rules, own = lead_scoring_of(obj if obj is not None else Bot())
        if rules is None:
            return "-"
        if own:
            edit = _admin_url("change", rules)
        elif obj is not None and obj.pk:
            edit = (_admin_url("add", rules) or "") + f"?bot={obj.pk}"
        else:
            edit = ""
        return render_to_string("admin/voicebot/bot/lead_scoring.html",
                                {"rules": rules, "own": own, "edit_url": edit})

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None and obj.pk:
            form = context.get("adminform").form if context.get("adminform") else None
            context["setup_warnings"] = setup_warnings(obj, llm=getattr(form, "llm_models", None))
        return super().render_change_form(request, context, add, change, form_url, obj)

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        for warning in getattr(form, "setup_warnings", ()):
            messages.warning(request, warning)

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
        calls = request.build_absolute_uri(reverse("stored_call"))  # the page links the stored call after hang-up
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


def _admin_url(kind: str, target) -> str:
    """The admin's add or change page of a row (or model) of another app; '' when it has none."""
    if target is None:
        return ""
    opts = target._meta
    try:
        if kind == "add":
            return reverse(f"admin:{opts.app_label}_{opts.model_name}_add")
        return reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[target.pk])
    except NoReverseMatch:
        return ""


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
