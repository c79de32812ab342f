"""Company reports: the figures of one local day or week, stored, e-mailed, sent as ``report.ready``."""

from __future__ import annotations

import logging
from collections import Counter
from datetime import date, datetime, time, timedelta

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.db.models import Count
from django.template.loader import render_to_string
from django.utils import timezone

from postcall.analytics import latency_stats
from postcall.models import CallOutcome, Event, Lead, Period, Report
from postcall.payloads import report_data
from postcall.webhooks import queue_event
from voicebot.models import Call, CallTurn, Company

log = logging.getLogger(__name__)


def period_bounds(company: Company, period: str, day: date | None = None) -> tuple[datetime, datetime]:
    """The local day or ISO week (Monday first) holding ``day``; default: the last complete one."""
    tz = company.tz
    today = timezone.now().astimezone(tz).date()
    if day is None:
        day = today - timedelta(days=1) if period == Period.DAY else today - timedelta(days=7)
    if period == Period.WEEK:
        day = day - timedelta(days=day.weekday())
        length = 7
    else:
        length = 1
    start = datetime.combine(day, time.min, tzinfo=tz)
    end = datetime.combine(day + timedelta(days=length), time.min, tzinfo=tz)
    return start, end


def figures(company: Company, start: datetime, end: datetime) -> dict:
    """Calls, answered, average duration, outcomes, leads by tier, latency, busiest hours."""
    calls = Call.objects.for_company(company).filter(started_at__gte=start, started_at__lt=end)
    rows = list(calls.values("pk", "started_at", "ended_at"))
    answered_ids = set(CallTurn.objects.filter(call__in=calls, role=CallTurn.Role.CALLER)
                       .values_list("call_id", flat=True).distinct())
    durations = [(r["ended_at"] - r["started_at"]).total_seconds() for r in rows if r["ended_at"]]
    latencies = CallTurn.objects.filter(call__in=calls, role=CallTurn.Role.BOT, latency_ms__isnull=False)
    outcomes = dict(CallOutcome.objects.for_company(company).filter(call__in=calls)
                    .values_list("result").annotate(n=Count("pk")).order_by())
    leads = dict(Lead.objects.for_company(company).filter(call__in=calls)
                 .values_list("tier").annotate(n=Count("pk")).order_by())
    tz = company.tz
    by_hour = Counter(r["started_at"].astimezone(tz).hour for r in rows)
    hours = [by_hour.get(h, 0) for h in range(24)]
    busiest = [h for h, n in sorted(by_hour.items(), key=lambda kv: (-kv[1], kv[0]))[:3]]
    return {
        "timezone": company.timezone,
        "calls": len(rows),
        "answered": len(answered_ids),
        "average_duration_sec": round(sum(durations) / len(durations), 1) if durations else None,
        "outcomes": outcomes,
        "leads": {tier: leads.get(tier, 0) for tier in ("hot", "warm", "cold")},
        **latency_stats(latencies.values_list("latency_ms", flat=True)),
        "calls_by_hour": hours,
        "busiest_hours": busiest,
    }


def build_report(company: Company, period: str, day: date | None = None) -> Report:
    """The report of a period, computed once (a rerun returns the stored one)."""
    start, end = period_bounds(company, period, day)
    report, created = Report.objects.get_or_create(
        company=company, period=period, period_start=start,
        defaults={"period_end": end, "data": figures(company, start, end)})
    if not created and report.created_at < report.period_end:
        # First built before its period was over (on demand): bring it up to date.
        report.data = figures(company, start, end)
        report.save(update_fields=["data"])
    return report


def email_report(report: Report) -> bool:
    """E-mail the report to the company's recipients, once; True when sent now."""
    with transaction.atomic():
        locked = Report.objects.select_for_update().select_related("company").get(pk=report.pk)
        recipients = list(locked.company.report_recipients)
        if locked.emailed_at is not None or not recipients:
            return False
        context = {"report": locked, "company": locked.company, "data": locked.data,
                   "local_start": locked.period_start.astimezone(locked.company.tz),
                   "local_end": (locked.period_end - timedelta(seconds=1)).astimezone(locked.company.tz)}
        subject = f"{locked.get_period_display()} call report: {locked.company.name}, {context['local_start']:%Y-%m-%d}"
        message = EmailMultiAlternatives(subject, render_to_string("postcall/report_email.txt", context),
                                         settings.DEFAULT_FROM_EMAIL, recipients)
        message.attach_alternative(render_to_string("postcall/report_email.html", context), "text/html")
        message.send()
        locked.emailed_at, locked.emailed_to = timezone.now(), recipients
        locked.save(update_fields=["emailed_at", "emailed_to"])
    report.emailed_at, report.emailed_to = locked.emailed_at, locked.emailed_to
    return True


def send_report(company: Company, period: str, day: date | None = None) -> Report:
    """Build, e-mail and announce (``report.ready``) a company's report; safe to repeat."""
    report = build_report(company, period, day)
    email_report(report)
    with transaction.atomic():
        queue_event(company, Event.REPORT_READY, f"report:{report.pk}", report_data(report))
    return report
