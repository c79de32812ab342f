"""Admin of campaigns: set one up, import its contacts, start, pause, resume or cancel it, follow it,
export its results as CSV.

Thin over ``campaigns.services`` and ``campaigns.importing``; scoped to the user's companies
like every company-owned admin (``CompanyScopedAdmin``).
"""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import Count, IntegerField, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.http import Http404, HttpResponseNotAllowed, StreamingHttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from campaigns import hours, services
from campaigns.exporting import csv_lines
from campaigns.importing import ContactImportError, import_csv
from campaigns.models import Attempt, Campaign, Contact
from voicebot.admin_scoping import CompanyScopedAdmin

CONTROLS = {"start": services.start_campaign, "pause": services.pause_campaign, "resume": services.resume_campaign,
            "cancel": services.cancel_campaign}
DONE = {"start": "started", "pause": "paused", "resume": "resumed", "cancel": "canceled"}
DAY_FIELDS = [f"hours_{day}" for day in hours.DAYS]


def day_field(name: str, first: bool = False) -> forms.CharField:
    return forms.CharField(label=name, required=False, widget=forms.TextInput(attrs={"size": 40,
                                                                                    "placeholder": "no calls"}),
                           help_text="Local times, start-end, several with commas: 09:00-12:00, 13:00-17:00. "
                                     "Empty: no calls that day." if first else "")


class CampaignForm(forms.ModelForm):
    """The weekly calling hours as one line per day (``09:00-12:00, 13:00-17:00``; empty: no calls)."""

    hours_mon = day_field("Monday", first=True)
    hours_tue = day_field("Tuesday")
    hours_wed = day_field("Wednesday")
    hours_thu = day_field("Thursday")
    hours_fri = day_field("Friday")
    hours_sat = day_field("Saturday")
    hours_sun = day_field("Sunday")

    class Meta:
        model = Campaign
        exclude = ["calling_hours"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        week = self.instance.calling_hours if self.instance.pk else hours.default_calling_hours()
        for day, field in zip(hours.DAYS, DAY_FIELDS, strict=True):
            self.fields[field].initial = hours.day_text(week.get(day, []))

    def clean(self):
        data = super().clean()
        week = {}
        for day, field in zip(hours.DAYS, DAY_FIELDS, strict=True):
            try:
                windows = hours.from_day_text(day, data.get(field, ""))
            except ValidationError as exc:
                self.add_error(field, exc)
                continue
            if windows:
                week[day] = windows
        if not self.errors and not week:
            raise ValidationError("Add calling hours on at least one day.")
        self.instance.calling_hours = week
        return data


class ImportForm(forms.Form):
    file = forms.FileField(required=False, help_text="CSV with a header row: phone, name and timezone (optional; "
                                                     "an IANA name such as Europe/Berlin), and any other columns, "
                                                     "which become the bot's {{variables}}.")
    text = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 6, "cols": 80}),
                           label="or paste CSV",
                           help_text="phone,name,timezone,appointment\n+49 30 1234567,Anna,Europe/Berlin,Tuesday 10:00")

    def clean(self):
        data = super().clean()
        if not data.get("file") and not data.get("text", "").strip():
            raise forms.ValidationError("Choose a CSV file or paste the list.")
        return data


@admin.register(Campaign)
class CampaignAdmin(CompanyScopedAdmin):
    form = CampaignForm
    list_display = ("name", "company", "bot", "status_display", "progress_bar", "calls_last_hour", "started_at")
    list_filter = ("company", "status", "bot")
    search_fields = ("name",)
    list_select_related = ("company", "bot")
    readonly_fields = ("status", "status_note", "progress_panel", "started_at", "resumed_at", "finished_at")
    fieldsets = (
        (None, {"fields": ("company", "name", "bot", "from_number", "status", "status_note", "progress_panel")}),
        ("Calling hours", {"fields": ("timezone", *DAY_FIELDS, "starts_at", "ends_at"),
                           "description": "Read in each contact's own time zone (the list's timezone column), "
                                          "else in the campaign's, else in the company's."}),
        ("Pace", {"fields": ("max_concurrent_calls", "calls_per_minute")}),
        ("Retries", {"fields": ("max_attempts", ("retry_busy_minutes", "retry_busy_times"),
                                ("retry_no_answer_minutes", "retry_no_answer_times"),
                                ("retry_voicemail_minutes", "retry_voicemail_times"),
                                ("retry_failed_minutes", "retry_failed_times")),
                     "description": "After each outcome, the contact is called again after its delay, at most "
                                    "its number of times (0: never), and never more than the attempts in all."}),
        ("Voicemail", {"fields": ("voicemail_message",)}),
        ("Circuit breaker", {"fields": (("breaker_failed_percent", "breaker_last_calls", "breaker_minutes",
                                         "breaker_min_calls"),),
                             "description": "Pauses the campaign when most recent calls failed (provider or "
                                            "runner errors; busy and no answer do not count as failures). Resume "
                                            "it once the cause is fixed."}),
        ("Dates", {"fields": ("started_at", "resumed_at", "finished_at")}),
    )
    actions = ["start_selected", "pause_selected", "resume_selected", "cancel_selected", "export_selected"]

    def get_queryset(self, request):
        hour_ago = timezone.now() - timedelta(hours=1)
        recent = (Attempt.objects.filter(campaign=OuterRef("pk"), placed_at__gt=hour_ago).order_by()
                  .values("campaign").annotate(n=Count("pk")).values("n"))
        return super().get_queryset(request).annotate(
            n_contacts=Count("contacts"), n_finished=Count("contacts", filter=Q(contacts__status__in=Contact.FINAL)),
            n_done=Count("contacts", filter=Q(contacts__status="done")),
            n_last_hour=Coalesce(Subquery(recent, output_field=IntegerField()), 0))

    @admin.display(description="status", ordering="status")
    def status_display(self, obj):
        if obj.status_note and obj.status == Campaign.Status.PAUSED:
            return format_html('<strong>{}</strong><br><span class="vb-status-note" style="color:#ba2121">{}</span>',
                               obj.get_status_display(), obj.status_note)
        return obj.get_status_display()

    @admin.display(description="progress (finished / all)")
    def progress_bar(self, obj):
        return bar(obj.n_finished, obj.n_contacts, f"{obj.n_done} reached")

    @admin.display(description="calls in the last hour")
    def calls_last_hour(self, obj):
        return obj.n_last_hour

    @admin.display(description="progress")
    def progress_panel(self, obj):
        if obj is None or not obj.pk:
            return "Save the campaign, then import its contacts."
        report = services.progress(campaign=obj)
        contacts = reverse("admin:campaigns_contact_changelist") + f"?campaign__id__exact={obj.pk}"
        counts = ", ".join(f"{label.lower()}: {report['contacts'][value]}" for value, label in Contact.Status.choices)
        return format_html('{}{} contacts ({}); {} calls in flight, {} calls in the last hour. <a href="{}">Contacts'
                           '</a> · <a href="{}">Import contacts</a> · <a href="{}">Export results (CSV)</a>{}',
                           bar(report["finished"], report["total"], f"{report['contacts']['done']} reached"),
                           report["total"], counts, report["calls_in_flight"], report["calls_last_hour"], contacts,
                           reverse("admin:campaigns_campaign_import", args=[obj.pk]),
                           reverse("admin:campaigns_campaign_export", args=[obj.pk]),
                           format_html("<br>Not dialling now: {}", report["waiting"]) if report["waiting"] else "")

    def change_view(self, request, object_id, form_url="", extra_context=None):
        campaign = self.get_object(request, object_id)
        controls = []
        if campaign is not None and self.has_change_permission(request, campaign):
            if campaign.status == Campaign.Status.DRAFT:
                controls.append(("start", "Start"))
            if campaign.status == Campaign.Status.PAUSED:
                controls.append(("resume", "Resume"))
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
            path("<int:object_id>/export/", self.admin_site.admin_view(self.export_view),
                 name="campaigns_campaign_export"),
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

    def export_view(self, request, object_id: int):
        """The campaign's results as a CSV download (one line per contact)."""
        campaign = self.get_object(request, str(object_id))
        if campaign is None or not self.has_view_permission(request, campaign):
            raise Http404("No such campaign.")
        return csv_response([campaign], f"campaign-{campaign.pk}-results.csv")

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

    @admin.action(description="Resume the selected paused campaigns", permissions=["change"])
    def resume_selected(self, request, queryset):
        self._control(request, "resume", queryset)

    @admin.action(description="Cancel the selected campaigns (contacts waiting are skipped)", permissions=["change"])
    def cancel_selected(self, request, queryset):
        self._control(request, "cancel", queryset)

    @admin.action(description="Export the results of the selected campaigns (CSV)", permissions=["view"])
    def export_selected(self, request, queryset):
        return csv_response(list(queryset.order_by("pk")), "campaign-results.csv")


def bar(done: int, total: int, extra: str = ""):
    """A progress bar with ``done / total`` beside it."""
    percent = round(100 * done / total) if total else 0
    return format_html('<div class="vb-progress" title="{}%" style="display:inline-block;width:120px;height:10px;'
                       'background:#ddd;border-radius:3px;vertical-align:middle;margin-right:6px">'
                       '<div style="width:{}%;height:10px;background:#417690;border-radius:3px"></div></div>'
                       '{} / {} ({}%{}) ', percent, percent, done, total, percent, f", {extra}" if extra else "")


def csv_response(campaigns, filename: str) -> StreamingHttpResponse:
    response = StreamingHttpResponse(csv_lines(campaigns=campaigns), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


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
    list_display = ("phone", "name", "timezone", "campaign", "status", "attempts_made", "last_status",
                    "next_attempt_at", "note")
    list_filter = ("campaign", "status", "last_status")
    search_fields = ("phone", "name")
    list_select_related = ("campaign",)
    fields = ("campaign", "phone", "name", "timezone", "variables", "status", "attempts_made", "last_status",
              "next_attempt_at", "note")
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
