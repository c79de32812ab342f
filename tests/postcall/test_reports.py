"""Company reports: local periods, only the company's own calls, e-mail once, beat schedules, the command."""

import json
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core import mail
from django.core.management import CommandError, call_command
from django_celery_beat.models import PeriodicTask

from postcall import processing, reports
from postcall.models import Report, ReportSchedule, WebhookDelivery
from tests.postcall.conftest import DEAD_LLM, make_endpoint, store_call
from voicebot import llm_endpoint

BERLIN = ZoneInfo("Europe/Berlin")


@pytest.fixture(autouse=True)
def dead_llm(monkeypatch):
    monkeypatch.setenv("VOICEBOT_LLM_BASE_URL", DEAD_LLM)
    llm_endpoint.base_url.cache_clear()
    yield
    llm_endpoint.base_url.cache_clear()


def at(day, hour, minute=0, tz=BERLIN):
    return datetime(2026, 11, day, hour, minute, tzinfo=tz)


def test_period_bounds_follow_the_company_time_zone(company_a, company_b):
    start, end = reports.period_bounds(company_a, "day", date(2026, 11, 17))
    assert (start, end) == (at(17, 0), at(18, 0))
    start, end = reports.period_bounds(company_b, "week", date(2026, 11, 19))  # a Thursday
    ny = ZoneInfo("America/New_York")
    assert (start, end) == (at(16, 0, tz=ny), at(23, 0, tz=ny))


def test_report_contains_only_the_companys_own_calls(bot_a, bot_b):
    for hour in (9, 9, 14):
        call = store_call(bot_a, started_at=at(17, hour, 10), ended_at=at(17, hour, 12))
        processing.process(call.pk)
    store_call(bot_a, started_at=at(16, 23, 50), ended_at=at(16, 23, 55))  # the day before, local time
    for _ in range(4):  # the other company, same day
        call = store_call(bot_b, started_at=at(17, 10), ended_at=at(17, 11))
        processing.process(call.pk)

    report = reports.build_report(bot_a.company, "day", date(2026, 11, 17))
    data = report.data
    assert data["calls"] == 3 and data["answered"] == 3
    assert data["average_duration_sec"] == 120.0
    assert data["outcomes"] == {"lead": 3}  # no scenarios on this bot: leads, no booking
    assert data["leads"] == {"hot": 3, "warm": 0, "cold": 0}
    assert data["busiest_hours"] == [9, 14]
    assert data["calls_by_hour"][9] == 2 and sum(data["calls_by_hour"]) == 3
    assert data["latency_median_ms"] == 1200 and data["latency_samples"] == 12
    other = reports.build_report(bot_b.company, "day", date(2026, 11, 17))
    assert other.data["calls"] == 4
    assert reports.build_report(bot_a.company, "day", date(2026, 11, 17)).pk == report.pk  # built once


def test_send_report_emails_once_and_announces_report_ready(bot_a, private_webhooks, django_capture_on_commit_callbacks):
    company = bot_a.company
    company.report_recipients = ["owner@alpha.example", "boss@alpha.example"]
    company.save()
    make_endpoint(company, "http://127.0.0.1:8113/hook", events=["report.ready"])
    store_call(bot_a, started_at=at(17, 9), ended_at=at(17, 10))
    with django_capture_on_commit_callbacks():
        report = reports.send_report(company, "day", date(2026, 11, 17))
        reports.send_report(company, "day", date(2026, 11, 17))
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["owner@alpha.example", "boss@alpha.example"]
    assert "Alpha Dental" in message.subject and "2026-11-17" in message.subject
    assert "Calls: 1" in message.body
    assert "<h2>" in message.alternatives[0][0]
    delivery = WebhookDelivery.objects.get(event="report.ready")
    assert delivery.payload["data"]["figures"]["calls"] == 1 and delivery.event_key == f"report:{report.pk}"


def test_send_report_command(bot_a, company_b):
    bot_a.company.report_recipients = ["owner@alpha.example"]
    bot_a.company.save()
    store_call(bot_a, started_at=at(17, 9), ended_at=at(17, 10))
    out = __import__("io").StringIO()
    call_command("send_report", company="alpha", period="week", date="2026-11-18", stdout=out)
    assert "1 calls, 1 answered; e-mailed to owner@alpha.example" in out.getvalue()
    report = Report.objects.get(company=bot_a.company)
    assert report.period == "week" and report.period_start == at(16, 0)
    with pytest.raises(CommandError, match="No company with slug 'nope'"):
        call_command("send_report", company="nope", period="day")
    with pytest.raises(CommandError, match="--date"):
        call_command("send_report", company="alpha", period="day", date="18.11.2026")


def test_schedules_become_beat_tasks_in_the_company_time_zone(company_a):
    schedule = ReportSchedule.objects.create(company=company_a, period="week", hour=8, weekday=1)
    task = PeriodicTask.objects.get(pk=schedule.periodic_task_id)
    assert task.task == "postcall.tasks.send_scheduled_report" and json.loads(task.args) == [schedule.pk]
    assert (task.crontab.hour, task.crontab.day_of_week, str(task.crontab.timezone)) == ("8", "1", "Europe/Berlin")
    company_a.timezone = "Asia/Tokyo"
    company_a.save()
    task.refresh_from_db()
    assert str(task.crontab.timezone) == "Asia/Tokyo"
    schedule.active = False
    schedule.save()
    task.refresh_from_db()
    assert task.enabled is False
    schedule.delete()
    assert not PeriodicTask.objects.filter(pk=task.pk).exists()


def test_scheduled_task_sends_the_last_complete_period(bot_a):
    from django.utils import timezone

    from postcall.tasks import send_scheduled_report

    bot_a.company.report_recipients = ["owner@alpha.example"]
    bot_a.company.save()
    yesterday = timezone.now().astimezone(BERLIN) - timedelta(days=1)
    store_call(bot_a, started_at=yesterday, ended_at=yesterday + timedelta(minutes=1))
    schedule = ReportSchedule.objects.create(company=bot_a.company, period="day")
    report = Report.objects.get(pk=send_scheduled_report(schedule.pk))
    assert report.data["calls"] == 1 and report.emailed_to == ["owner@alpha.example"]
