"""Admin of the post-call data, and the call pages extended with it.

The call list gains outcome and lead filters and columns, and the call page a
panel with summary, outcome and lead beside the transcript: ``CallAdmin`` from
voicebot is extended here (re-registered), so voicebot never imports postcall.
"""

from __future__ import annotations

import secrets

from django import forms
from django.contrib import admin, messages
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.html import format_html

from postcall import webhooks
from postcall.charts import hours_bar_chart
from postcall.models import (
    SUBSCRIBABLE_EVENTS,
    CallOutcome,
    Event,
    Lead,
    LeadScoringRules,
    Report,
    ReportSchedule,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from voicebot import outbound
from voicebot.admin_calls import CallAdmin
from voicebot.admin_scoping import CompanyScopedAdmin
from voicebot.models import Call

# --- Webhooks --------------------------------------------------------------------------------


class WebhookEndpointForm(forms.ModelForm):
    url = forms.URLField(max_length=500, assume_scheme="https",
                         help_text="Where events are POSTed (https://...). Checked when saved.")
    events = forms.MultipleChoiceField(choices=SUBSCRIBABLE_EVENTS, widget=forms.CheckboxSelectMultiple,
                                       initial=[Event.CALL_ENDED, Event.LEAD_CAPTURED])

    class Meta:
        model = WebhookEndpoint
        fields = ("company", "url", "events", "secret", "active", "description")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.instance.pk:
            self.fields["secret"].initial = "whsec_" + secrets.token_urlsafe(24)


def error_excerpt(text: str) -> str:
    """A stored attempt error as shown: one plain line (escaped by the admin like any str), bounded.

    New rows hold only the status and a sanitised excerpt (voicebot.outbound); rows
    stored before that may hold raw reply text, so it is sanitised again here.
    """
    return outbound.sanitise(text, limit=outbound.OWN_MESSAGE_CHARS) or "-"


class WebhookAttemptInline(admin.TabularInline):
    model = WebhookAttempt
    fields = ("number", "attempted_at", "response_code", "error_display", "duration_ms", "replay")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    @admin.display(description="error")
    def error_display(self, obj):
        return error_excerpt(obj.error)


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(CompanyScopedAdmin):
    form = WebhookEndpointForm
    list_display = ("url", "company", "event_list", "active", "delivered", "failing")
    list_filter = ("company", "active")
    search_fields = ("url", "description")
    actions = ["send_test_event"]

    @admin.action(description="Send a test event (a signed ping) to the selected endpoints", permissions=["view"])
    def send_test_event(self, request, queryset):
        for endpoint in queryset:
            webhooks.send_test_event(endpoint)
        messages.success(request, f"Queued a test event for {queryset.count()} endpoint(s); see Webhook deliveries.")

    @admin.display(description="events")
    def event_list(self, obj):
        return ", ".join(obj.events)

    @admin.display(description="delivered")
    def delivered(self, obj):
        return obj.deliveries.filter(status=WebhookDelivery.Status.DELIVERED).count()

    @admin.display(description="retrying or failed")
    def failing(self, obj):
        return obj.deliveries.filter(status__in=[WebhookDelivery.Status.RETRYING,
                                                 WebhookDelivery.Status.FAILED]).count()


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(CompanyScopedAdmin):
    list_display = ("created_at", "event", "endpoint", "status", "attempts", "last_response_code", "next_attempt_at",
                    "delivered_at")
    list_filter = ("status", "event", "endpoint__company", "created_at")
    search_fields = ("id", "event_key", "endpoint__url")
    list_select_related = ("endpoint",)
    readonly_fields = ("id", "endpoint", "event", "event_key", "status", "attempts", "last_response_code",
                       "last_error_display", "next_attempt_at", "delivered_at", "created_at", "payload")
    exclude = ("last_error",)  # shown as last_error_display
    inlines = [WebhookAttemptInline]
    actions = ["replay_deliveries"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser  # the delivery log is the record of what was sent

    @admin.display(description="last error")
    def last_error_display(self, obj):
        return error_excerpt(obj.last_error)

    @admin.action(description="Replay selected deliveries (send again now, same id)",
                  permissions=["view"])
    def replay_deliveries(self, request, queryset):
        count = 0
        for delivery in queryset:
            webhooks.replay(delivery)
            count += 1
        messages.success(request, f"Queued {count} delivery(ies) to be sent again.")


# --- Outcomes, leads, scoring ----------------------------------------------------------------


@admin.register(CallOutcome)
class CallOutcomeAdmin(CompanyScopedAdmin):
    list_display = ("call", "company", "result", "intent", "summary_source", "processed_at")
    list_filter = ("company", "result", "intent", "summary_source")
    search_fields = ("summary", "intent")
    readonly_fields = ("call", "company", "result", "intent", "intent_source", "summary", "summary_source", "fields",
                       "booking", "processed_at")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Lead)
class LeadAdmin(CompanyScopedAdmin):
    list_display = ("created_at", "company", "bot", "name", "phone", "email", "score", "tier", "call_link")
    list_filter = ("company", "bot", "tier", "created_at")
    search_fields = ("name", "phone", "email")
    list_select_related = ("company", "bot")
    readonly_fields = ("call", "company", "bot", "name", "phone", "email", "contact_sources", "score", "tier",
                       "score_reasons", "created_at")
    date_hierarchy = "created_at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="call")
    def call_link(self, obj):
        return format_html('<a href="{}">call {}</a>', reverse("admin:voicebot_call_change", args=[obj.call_id]),
                           obj.call_id)


@admin.register(LeadScoringRules)
class LeadScoringRulesAdmin(CompanyScopedAdmin):
    list_display = ("bot", "hot_threshold", "warm_threshold")
    list_filter = ("bot__company",)


# --- Reports -----------------------------------------------------------------------------------


WEEKDAYS = [(0, "Sunday"), (1, "Monday"), (2, "Tuesday"), (3, "Wednesday"), (4, "Thursday"), (5, "Friday"),
            (6, "Saturday")]  # 0 = Sunday, as ReportSchedule.weekday (and cron) count


class ReportScheduleForm(forms.ModelForm):
    weekday = forms.TypedChoiceField(choices=WEEKDAYS, coerce=int, initial=1,
                                     help_text="Weekly reports: the day they are sent.")
    hour = forms.TypedChoiceField(choices=[(h, f"{h:02d}:00") for h in range(24)], coerce=int, initial=7,
                                  help_text="Local time (the company's time zone) when the report is sent.")

    class Meta:
        model = ReportSchedule
        fields = ("company", "period", "hour", "weekday", "active")


@admin.register(ReportSchedule)
class ReportScheduleAdmin(CompanyScopedAdmin):
    form = ReportScheduleForm
    list_display = ("company", "period", "hour_display", "weekday_display", "active", "timezone", "preview_link")
    list_filter = ("company", "period", "active")
    readonly_fields = ("preview_link",)
    actions = ["send_now"]

    @admin.display(description="time zone")
    def timezone(self, obj):
        return obj.company.timezone

    @admin.display(description="hour", ordering="hour")
    def hour_display(self, obj):
        return f"{obj.hour:02d}:00"

    @admin.display(description="weekday", ordering="weekday")
    def weekday_display(self, obj):
        return dict(WEEKDAYS).get(obj.weekday, obj.weekday) if obj.period == "week" else "-"

    @admin.display(description="preview")
    def preview_link(self, obj):
        if obj is None or not obj.pk:
            return "Save the schedule first."
        url = reverse("admin:postcall_reportschedule_preview", args=[obj.pk])
        return format_html('<a href="{}">Last {}</a> · <a href="{}?current=1">This {} so far</a>', url,
                           "week" if obj.period == "week" else "day", url, "week" if obj.period == "week" else "day")

    def get_urls(self):
        from django.urls import path

        preview = self.admin_site.admin_view(self.preview_view)
        return [path("<int:object_id>/preview/", preview, name="postcall_reportschedule_preview"),
                *super().get_urls()]

    def preview_view(self, request, object_id: int):
        """The report of the last complete period (or this one so far), rendered; nothing stored or sent."""
        from datetime import timedelta

        from django.http import Http404
        from django.template.response import TemplateResponse
        from django.utils import timezone as dj_timezone

        from postcall.reports import figures, period_bounds

        schedule = self.get_object(request, str(object_id))  # scoped: another company's is not found
        if schedule is None or not self.has_view_permission(request, schedule):
            raise Http404("No such report schedule.")
        company = schedule.company
        current = request.GET.get("current") == "1"
        day = dj_timezone.now().astimezone(company.tz).date() if current else None
        start, end = period_bounds(company, schedule.period, day)
        report = Report(company=company, period=schedule.period, period_start=start, period_end=end,
                        data=figures(company, start, min(end, dj_timezone.now()) if current else end))
        context = {**self.admin_site.each_context(request), "opts": self.model._meta, "original": schedule,
                   "title": f"Preview: {schedule}", "report": report, "company": company, "data": report.data,
                   "chart": hours_bar_chart(report.data.get("calls_by_hour", [])), "current": current,
                   "local_start": start.astimezone(company.tz),
                   "local_end": (end - timedelta(seconds=1)).astimezone(company.tz),
                   "recipients": company.report_recipients}
        return TemplateResponse(request, "admin/postcall/reportschedule/preview.html", context)

    @admin.action(description="Send now: the last complete period's report, e-mailed and sent as report.ready",
                  permissions=["change"])
    def send_now(self, request, queryset):
        from django.utils import timezone as dj_timezone

        from postcall.reports import send_report

        for schedule in queryset.select_related("company"):
            started = dj_timezone.now()
            report = send_report(schedule.company, schedule.period)
            local = report.period_start.astimezone(schedule.company.tz)
            what = f"{report.get_period_display()} report of {schedule.company.name} for {local:%Y-%m-%d}"
            if report.emailed_at and report.emailed_at >= started:
                messages.success(request, f"{what}: e-mailed to {', '.join(report.emailed_to)}.")
            elif report.emailed_at:
                sent = report.emailed_at.astimezone(schedule.company.tz)
                messages.info(request, f"{what}: already e-mailed on {sent:%Y-%m-%d %H:%M} to "
                                       f"{', '.join(report.emailed_to)}; report.ready sent to webhooks again if new.")
            else:
                messages.warning(request, f"{what}: built, not e-mailed: the company has no report recipients.")


@admin.register(Report)
class ReportAdmin(CompanyScopedAdmin):
    list_display = ("period_start", "company", "period", "calls", "answered", "emailed_at")
    list_filter = ("company", "period")
    readonly_fields = ("company", "period", "period_start", "period_end", "overview", "emailed_at", "emailed_to",
                       "created_at", "data")
    # The figures as staff read them first; the raw data (what the API and webhooks carry) folded away.
    fieldsets = ((None, {"fields": ("company", "period", "period_start", "period_end", "overview", "emailed_at",
                                    "emailed_to", "created_at")}),
                 ("Raw data", {"classes": ("collapse",), "fields": ("data",)}))

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="calls")
    def calls(self, obj):
        return obj.data.get("calls")

    @admin.display(description="answered")
    def answered(self, obj):
        return obj.data.get("answered")

    @admin.display(description="report")
    def overview(self, obj):
        return render_to_string("admin/postcall/report_overview.html",
                                {"data": obj.data, "chart": hours_bar_chart(obj.data.get("calls_by_hour", []))})


# --- The call pages ------------------------------------------------------------------------------


class OutcomeFilter(admin.SimpleListFilter):
    title = "outcome"
    parameter_name = "outcome"

    def lookups(self, request, model_admin):
        return [*CallOutcome.Result.choices, ("none", "Not processed yet")]

    def queryset(self, request, queryset):
        if self.value() == "none":
            return queryset.filter(outcome__isnull=True)
        if self.value():
            return queryset.filter(outcome__result=self.value())
        return queryset


class LeadScoreFilter(admin.SimpleListFilter):
    title = "lead score"
    parameter_name = "lead"

    def lookups(self, request, model_admin):
        return [*Lead.Tier.choices, ("none", "No lead")]

    def queryset(self, request, queryset):
        if self.value() == "none":
            return queryset.filter(lead__isnull=True)
        if self.value():
            return queryset.filter(lead__tier=self.value())
        return queryset


class PostcallCallAdmin(CallAdmin):
    """voicebot's CallAdmin plus outcome and lead: filters, columns, the panel at the top of the page,
    and "Regenerate summary and outcome" (the same processing code as after the call)."""

    actions = ["regenerate_outcomes"]

    def get_list_display(self, request):
        return (*super().get_list_display(request), "outcome_display", "lead_display")

    def get_list_filter(self, request):
        return [*super().get_list_filter(request), OutcomeFilter, LeadScoreFilter]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("outcome", "lead")

    def get_readonly_fields(self, request, obj=None):
        return (*super().get_readonly_fields(request, obj), "postcall_panel")

    def get_fieldsets(self, request, obj=None):
        """The panel (summary, outcome, lead, fields) first, in place of the plain collected-fields table."""
        fieldsets = []
        for name, options in super().get_fieldsets(request, obj):
            fields = [f for f in options.get("fields", ()) if f != "collected_table"]
            if fields:
                fieldsets.append((name, {**options, "fields": fields}))
        return [("After the call", {"fields": ["postcall_panel"]}), *fieldsets]

    def get_urls(self):
        from django.urls import path

        regenerate = self.admin_site.admin_view(self.regenerate_view)
        return [path("<int:pk>/regenerate/", regenerate, name="voicebot_call_regenerate"), *super().get_urls()]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra = dict(extra_context or {})
        if object_id and str(object_id).isdigit():
            extra["regenerate_url"] = reverse("admin:voicebot_call_regenerate", args=[object_id])
        return super().change_view(request, object_id, form_url, extra_context=extra)

    def regenerate_view(self, request, pk):
        """POST (with CSRF): summary, outcome and lead of one call made again; another company's call is 404."""
        from django.http import Http404, HttpResponseNotAllowed
        from django.shortcuts import get_object_or_404, redirect

        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_view_permission(request):
            raise Http404
        call = get_object_or_404(self.get_queryset(request), pk=pk)
        self._regenerate(request, [call])
        return redirect("admin:voicebot_call_change", call.pk)

    @admin.action(description="Regenerate summary and outcome of the selected calls", permissions=["view"])
    def regenerate_outcomes(self, request, queryset):
        self._regenerate(request, list(queryset[:50]))

    def _regenerate(self, request, calls):
        from postcall import processing

        done = []
        for call in calls:
            outcome = processing.process(call.pk, force=True)
            if outcome is not None:
                done.append(f"call {call.pk}: {outcome.get_result_display()}, summary "
                            f"{outcome.get_summary_source_display().lower()}")
        if done:
            messages.success(request, "Regenerated " + "; ".join(done) + ".")

    @admin.display(description="outcome", ordering="outcome__result")
    def outcome_display(self, obj):
        outcome = getattr(obj, "outcome", None)
        return outcome.get_result_display() if outcome else "-"

    @admin.display(description="lead", ordering="lead__score")
    def lead_display(self, obj):
        lead = getattr(obj, "lead", None)
        return f"{lead.get_tier_display()} ({lead.score})" if lead else "-"

    @admin.display(description="summary, outcome, lead")
    def postcall_panel(self, obj):
        from voicebot.admin_calls import fields_rows, local_time

        outcome = CallOutcome.objects.filter(call=obj, company=obj.company_id).first()
        lead = Lead.objects.filter(call=obj, company=obj.company_id).first()
        deliveries = WebhookDelivery.objects.filter(event_key=f"call:{obj.pk}", endpoint__company=obj.company_id)
        rows = fields_rows(outcome.fields if outcome and outcome.fields else obj.collected_fields, obj.bot)
        booking = fields_rows(outcome.booking, obj.bot) if outcome and outcome.booking else []
        return render_to_string("admin/postcall/call_panel.html", {
            "outcome": outcome, "lead": lead, "analytics": obj.analytics, "rows": rows, "booking": booking,
            "processed": local_time(obj.company, outcome.processed_at) if outcome else "",
            "deliveries": deliveries.select_related("endpoint")})


if admin.site.is_registered(Call):
    admin.site.unregister(Call)
admin.site.register(Call, PostcallCallAdmin)
