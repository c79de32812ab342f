"""A report in admin reads like admin: outcome labels, a chart with counts and an hour axis, raw data folded."""

import datetime

from django.utils import timezone

from postcall.models import CallOutcome
from postcall.reports import build_report
from voicebot.models import Call, CallTurn


def test_report_page_labels_outcomes_and_counts_its_bars(client_a, company_a, bot_a):
    day = timezone.now().astimezone(company_a.tz).date() - datetime.timedelta(days=1)
    at = datetime.datetime.combine(day, datetime.time(14, 10), tzinfo=company_a.tz)
    for index in range(3):
        call = Call.objects.create(company=company_a, bot=bot_a, transport="twilio", external_id=f"CAr{index}",
                                   started_at=at, ended_at=at + datetime.timedelta(seconds=60))
        CallTurn.objects.create(call=call, index=0, role="caller", text="How much is a filling?")
        CallOutcome.objects.create(call=call, company=company_a, result="information" if index else "booking")
    report = build_report(company_a, "day", day)
    page = client_a.get(f"/admin/postcall/report/{report.pk}/change/").content.decode()
    assert "Question answered 2" in page and "Booking made 1" in page
    assert "information 2" not in page
    assert '<title>14:00 – 3 calls</title>' in page and ">3</text>" in page  # the 14:00 bar says its count
    assert ">0:00</text>" in page and ">21:00</text>" in page  # the hour axis
    assert 'class="module collapse"' in page or "collapse" in page.split("Raw data")[0][-300:]
