"""Admin of campaigns: set one up, import its contacts, start, pause or cancel it, follow it.

Thin over ``campaigns.services`` and ``campaigns.importing``; scoped to the user's companies
like every company-owned admin (``CompanyScopedAdmin``).
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db.models import Count, Q
from django.http import Http404, HttpResponseNotAllowed
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from campaigns import services
from campaigns.importing import ContactImportError, import_csv
from campaigns.models import WEEKDAYS, Attempt, Campaign, Contact
from voicebot.admin_scoping import CompanyScopedAdmin

CONTROLS = {"start": services.start_campaign, "pause": services.pause_campaign, "cancel": services.cancel_campaign}
DONE = {"start": "started", "pause": "paused", "cancel": "canceled"}


class CampaignForm(forms.ModelForm):
    call_days = forms.TypedMultipleChoiceField(choices=WEEKDAYS, coerce=int, widget=forms.CheckboxSelectMultiple,
                                               initial=[0, 1, 2, 3, 4])
    retry_on = forms.MultipleChoiceField(choices=Campaign._meta.get_field("retry_on").base_field.choices,
                                         widget=forms.CheckboxSelectMultiple, required=False,
                                         initial=["busy", "no-answer", "failed"],
                                         help_text=Campaign._meta.get_field("retry_on").help_text)

    class Meta:
        model = Campaign
        fields = "__all__"


class ImportForm(forms.Form):
    file = forms.FileField(required=False, help_text="CSV with a header row: phone, name (optional), and any "
                                                     "other columns, which become the bot's {{variables}}.")
    text = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 6, "cols": 80}),
                           label="or paste CSV", help_text="phone,name,appointment\n+49 30 1234567,Anna,Tuesday 10:00")

    def clean(self):
        data = super().clean()
        if not data.get("file") and not data.get("text", "").strip():
            raise forms.ValidationError("Choose a CSV file or paste the list.")
        return data


@admin.register(Campaign)
class CampaignAdmin(CompanyScopedAdmin):
    form = CampaignForm
    list_display = ("name", "company", "bot", "status", "progress_display", "started_at")
    list_filter = ("company", "status", "bot")
    search_fields = ("name",)
    list_select_related = ("company", "bot")
    readonly_fields = ("status", "status_note", "progress_panel", "started_at", "finished_at")
    fieldsets = (
        (None, {"fields": ("company", "name", "bot", "from_number", "status", "status_note", "progress_panel")}),
        ("Calling hours", {"fields": ("timezone", "call_days", "window_start", "window_end", "starts_at", "ends_at")}),
        ("Pace and retries", {"fields": ("max_concurrent_calls", "calls_per_minute", "max_attempts",
                                         "retry_delay_minutes", "retry_on")}),
        ("Dates", {"fields": ("started_at", "finished_at")}),
    )
    actions = ["start_selected", "pause_selected", "cancel_selected"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(
            n_contacts=Count("contacts"), n_open=Count("contacts", filter=Q(contacts__status__in=("pending", "calling"))),
            n_done=Count("contacts", filter=Q(contacts__status="done")))

    @admin.display(description="reached / open / all")
    def progress_display(self, obj):
        return f"{obj.n_done} / {obj.n_open} / {obj.n_contacts}"

    @admin.display(description="progress")
    def progress_panel(self, obj):
        if obj is None or not obj.pk:
            return "Save the campaign, then import its contacts."
        report = services.progress(campaign=obj)
        contacts = reverse("admin:campaigns_contact_changelist") + f"?campaign__id__exact={obj.pk}"
        counts = ", ".join(f"{label.lower()}: {report['contacts'][value]}" for value, label in Contact.Status.choices)
        return format_html('{} contacts ({}); {} calls in flight. <a href="{}">Contacts</a> · '
                           '<a href="{}">Import contacts</a>{}', report["total"], counts, report["calls_in_flight"],
                           contacts, reverse("admin:campaigns_campaign_import", args=[obj.pk]),
                           format_html("<br>Not dialling now: {}", report["waiting"]) if report["waiting"] else "")

    def change_view(self, request, object_id, form_url="", extra_context=None):
        campaign = self.get_object(request, object_id)
        controls = []
        if campaign is not None and self.has_change_permission(request, campaign):
            if campaign.status not in (Campaign.Status.RUNNING, Campaign.Status.CANCELED):
                controls.append(("start", "Resume" if campaign.status == Campaign.Status.PAUSED else "Start"))
            if campaign.status == Campaign.Status.RUNNING:
                controls.append(("pause", "Pause"))
            if campaign.status not in Campaign.FINISHED:
                controls.append(("cancel", "Cancel campaign"))
        extra_context = {**(extra_context or {}), "campaign_controls": controls}
        return super().change_view(request, object_id, form_url, extra_context)

    def get_urls(self):
        return [
            path("<int:object_id>/import/", self.admin_site.admin_view(self.import_view),
                 name="campaigns_campaign_import"),
            path("<int:object_id>/control/<str:verb>/", self.admin_site.admin_view(self.control_view),
                 name="campaigns_campaign_control"),
            *super().get_urls(),
        ]

    def _own(self, request, object_id):
        campaign = self.get_object(request, str(object_id))  # scoped: other companies' campaigns are not found
        if campaign is None or not self.has_change_permission(request, campaign):
            raise Http404("No such campaign.")
        return campaign

    def import_view(self, request, object_id: int):
        """Upload or paste a contact list; shows what was added and each bad line."""
        campaign = self._own(request, object_id)
        result = None
        form = ImportForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data.get("file")
            data = upload.read() if upload else form.cleaned_data["text"]
            try:
                result = import_csv(campaign=campaign, data=data)
            except ContactImportError as exc:
                form.add_error("file" if upload else "text", str(exc))
            else:
                self.message_user(request, f"{result.created} contacts added, {result.duplicates} duplicates left "
                                           f"out, {len(result.errors)} lines with errors.",
                                  messages.WARNING if result.errors else messages.SUCCESS)
        context = {**self.admin_site.each_context(request), "opts": self.model._meta, "original": campaign,
                   "title": f"Import contacts into {campaign}", "form": form, "result": result,
                   "errors": result.errors[:200] if result else []}
        return TemplateResponse(request, "admin/campaigns/campaign/import_contacts.html", context)

    def control_view(self, request, object_id: int, verb: str):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if verb not in CONTROLS:
            raise Http404("No such control.")
        campaign = self._own(request, object_id)
        self._control(request, verb, [campaign])
        return redirect("admin:campaigns_campaign_change", campaign.pk)

    def _control(self, request, verb: str, campaigns) -> None:
        for campaign in campaigns:
            try:
                CONTROLS[verb](campaign=campaign)
            except services.CampaignError as exc:
                self.message_user(request, f"{campaign} was not {DONE[verb]}: {exc}", messages.ERROR)
            else:
                self.message_user(request, f"{campaign} {DONE[verb]}.", messages.SUCCESS)

    @admin.action(description="Start (or resume) the selected campaigns", permissions=["change"])
    def start_selected(self, request, queryset):
        self._control(request, "start", queryset)

    @admin.action(description="Pause the selected campaigns", permissions=["change"])
    def pause_selected(self, request, queryset):
        self._control(request, "pause", queryset)

    @admin.action(description="Cancel the selected campaigns (contacts waiting are skipped)", permissions=["change"])
    def cancel_selected(self, request, queryset):
        self._control(request, "cancel", queryset)


class AttemptInline(admin.TabularInline):
    model = Attempt
    fields = ("number", "placed_at", "call_link", "result", "settled_at", "note")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    @admin.display(description="call")
    def call_link(self, obj):
        if not obj.call_id:
            return "-"
        return format_html('<a href="{}">call {}</a>', reverse("admin:voicebot_call_change", args=[obj.call_id]),
                           obj.call_id)


@admin.register(Contact)
class ContactAdmin(CompanyScopedAdmin):
    list_display = ("phone", "name", "campaign", "status", "attempts_made", "last_status", "next_attempt_at", "note")
    list_filter = ("campaign", "status", "last_status")
    search_fields = ("phone", "name")
    list_select_related = ("campaign",)
    fields = ("campaign", "phone", "name", "variables", "status", "attempts_made", "last_status", "next_attempt_at",
              "note")
    readonly_fields = ("campaign", "phone", "status", "attempts_made", "last_status", "next_attempt_at", "note")
    inlines = [AttemptInline]
    actions = ["skip_selected"]

    def has_add_permission(self, request):
        return False  # contacts come in through a campaign's import page (numbers read in the company's country)

    @admin.action(description="Skip the selected contacts (never call them again)", permissions=["change"])
    def skip_selected(self, request, queryset):
        skipped = 0
        for contact in queryset:
            try:
                services.skip_contact(contact=contact)
            except services.CampaignError:
                continue
            skipped += 1
        self.message_user(request, f"{skipped} contacts skipped.", messages.SUCCESS)
