"""The admin's first page: figures per company (in its time zone), what needs attention, scoping."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from campaigns.models import Campaign
from knowledge.models import KnowledgeDocument
from postcall.models import CallOutcome, Lead, WebhookDelivery, WebhookEndpoint
from tests.conftest import make_staff
from voicebot.dashboard import build_dashboard
from voicebot.models import Call, CallTurn

BERLIN, NEW_YORK = ZoneInfo("Europe/Berlin"), ZoneInfo("America/New_York")
# Wednesday 10 June 2026, 12:00 in Berlin (company A), 06:00 in New York (company B).
NOW = datetime(2026, 6, 10, 10, 0, tzinfo=ZoneInfo("UTC"))


def local(tz, day, hour, minute=0):
    return datetime(2026, 6, day, hour, minute, tzinfo=tz)


def make_call(bot, started_at, *, status=Call.Status.COMPLETED, end_reason=Call.EndReason.CALLER_HANGUP,
              caller_spoke=True, replies=(("Fine, thanks.", 500),), result=None, booking=None, tier=None):
    call = Call.objects.create(company=bot.company, bot=bot, transport=Call.Transport.SIM, status=status,
                               started_at=started_at, ended_at=started_at + timedelta(minutes=2),
                               end_reason=end_reason, from_number="+4930999")
    turns = [CallTurn(call=call, index=0, role=CallTurn.Role.BOT, text=bot.greeting)]
    if caller_spoke:
        turns.append(CallTurn(call=call, index=1, role=CallTurn.Role.CALLER, text="Hello?"))
        for text, latency in replies:
            turns.append(CallTurn(call=call, index=len(turns), role=CallTurn.Role.BOT, text=text, latency_ms=latency))
    CallTurn.objects.bulk_create(turns)
    if result or booking:
        CallOutcome.objects.create(call=call, company=bot.company, result=result or CallOutcome.Result.BOOKING,
                                   booking=booking)
    if tier:
        Lead.objects.create(call=call, company=bot.company, bot=bot, tier=tier, phone="+4930999")
    return call


@pytest.fixture
def calls_a(bot_a):
    """Company A's calls around this week (Berlin time), with the figures they make worked out by hand."""
    return {
        # Today (Wednesday) just after midnight: in UTC still Tuesday.
        "early": make_call(bot_a, local(BERLIN, 10, 0, 30), replies=[("We open at nine.", 400), ("Bye.", 600)],
                           booking={"date": "2026-06-12"}, tier="hot"),
        "fallback": make_call(bot_a, local(BERLIN, 10, 9), replies=[(bot_a.fallback_phrase, 2000),
                                                                     (f" {bot_a.fallback_phrase} Try again.", None)]),
        "error": make_call(bot_a, local(BERLIN, 10, 11, 15), status=Call.Status.FAILED,
                           end_reason=Call.EndReason.ERROR, caller_spoke=False, result=CallOutcome.Result.FAILED),
        # Yesterday 23:30 local: this week, not today.
        "yesterday": make_call(bot_a, local(BERLIN, 9, 23, 30), replies=[("Sure.", 1000)],
                               result=CallOutcome.Result.BOOKING, tier="warm"),
        # Monday 00:10 local (Sunday in UTC): this week; the caller never spoke.
        "monday": make_call(bot_a, local(BERLIN, 8, 0, 10), caller_spoke=False, end_reason=Call.EndReason.SILENCE),
        # Sunday 23:30 local: last week, counted nowhere.
        "last_week": make_call(bot_a, local(BERLIN, 7, 23, 30), replies=[("Old.", 9999)],
                               booking={"date": "x"}, tier="hot"),
    }


@pytest.fixture
def calls_b(bot_b):
    return {"today": make_call(bot_b, local(NEW_YORK, 10, 5), replies=[("Hi.", 300)], tier="hot",
                               booking={"date": "2026-06-11"}),
            "error": make_call(bot_b, local(NEW_YORK, 10, 4), status=Call.Status.FAILED,
                               end_reason=Call.EndReason.ERROR, caller_spoke=False)}


@pytest.fixture
def trouble(company_a, company_b, bot_a, bot_b):
    """Failed documents, failing webhooks and a campaign paused by its breaker, in both companies."""
    rows = {}
    for key, company, bot in (("a", company_a, bot_a), ("b", company_b, bot_b)):
        rows[f"doc_{key}"] = KnowledgeDocument.objects.create(
            company=company, name=f"prices-{key}.pdf", content_hash=key * 64, status="failed",
            error=f"The PDF of {key} has no text layer.")
        KnowledgeDocument.objects.create(company=company, name=f"hours-{key}.txt", content_hash=key.upper() * 64,
                                         status="ready")
        endpoint = WebhookEndpoint.objects.create(company=company, url=f"https://hooks-{key}.example.test/h",
                                                  events=["call.ended"], secret="x")
        rows[f"hook_{key}"] = endpoint
        for n, status in enumerate(("failed", "failed", "retrying", "delivered")):
            WebhookDelivery.objects.create(endpoint=endpoint, event="call.ended", event_key=f"call:{n}", payload={},
                                           status=status, last_error=f"HTTP 502 from {key}" if n < 3 else "")
        healthy = WebhookEndpoint.objects.create(company=company, url=f"https://ok-{key}.example.test/h",
                                                 events=["call.ended"], secret="x")
        WebhookDelivery.objects.create(endpoint=healthy, event="call.ended", event_key="k", payload={},
                                       status="delivered")
        rows[f"campaign_{key}"] = Campaign.objects.create(
            company=company, bot=bot, name=f"Spring {key}", status="paused",
            status_note="paused by the circuit breaker: 5 of the last 5 calls failed within 15 minutes; fix the "
                        "cause, then resume it")
        Campaign.objects.create(company=company, bot=bot, name=f"Paused by staff {key}", status="paused")
        Campaign.objects.create(company=company, bot=bot, name=f"Running {key}", status="running")
    return rows


def figures_row(html: str, company) -> dict[str, str]:
    row = re.search(rf'<tr data-company="{company.pk}">(.*?)</tr>', html, re.S).group(1)
    return {name: re.sub(r"<[^>]+>", "", value).strip()
            for name, value in re.findall(r'data-figure="(\w+)">(.*?)</td>', row, re.S)}


def test_figures_of_a_company_in_its_own_time_zone(staff_a, company_a, calls_a):
    dashboard = build_dashboard(user=staff_a, now=NOW)
    [row] = dashboard.rows
    f = row.figures
    assert row.company == company_a and row.local_clock == "Wed 12:00"
    assert (f.calls_today, f.calls_week) == (3, 5)  # 23:30 yesterday is not today; Sunday is last week
    assert (f.answered_today, f.answered_week) == (2, 3)  # the failed and the silent call reached nobody
    assert (f.answered_rate_today, f.answered_rate_week) == (67, 60)
    assert (f.bookings_today, f.bookings_week) == (1, 2)  # a booking's fields, or the result "booking"
    assert f.leads_week == {"hot": 1, "warm": 1, "cold": 0}
    assert (f.latency_avg_ms, f.latency_p95_ms, f.latency_samples) == (1000, 1850, 4)  # 400, 600, 1000, 2000
    assert f.calls_by_hour[0] == 1 and f.calls_by_hour[9] == 1 and f.calls_by_hour[11] == 1
    assert sum(f.calls_by_hour) == 3
    assert dashboard.has_calls and dashboard.getting_started == []


def test_the_week_starts_on_monday_local_time(staff_a, calls_a):
    monday_morning = datetime(2026, 6, 8, 7, 0, tzinfo=BERLIN)
    f = build_dashboard(user=staff_a, now=monday_morning).rows[0].figures
    assert (f.calls_today, f.calls_week) == (1, 1)  # Monday 00:10 only; Sunday 23:30 was last week


def test_staff_see_only_their_company_and_a_superuser_sees_all(staff_a, company_a, company_b, calls_a, calls_b,
                                                               trouble):
    mine = build_dashboard(user=staff_a, now=NOW)
    assert mine.companies == [company_a] and [r.company for r in mine.rows] == [company_a]
    assert {item.company for lst in mine.attention for item in lst.items} == {company_a}
    assert (mine.total.calls_today, mine.total.latency_p95_ms) == (3, 1850)
    # Asking for company B's figures by id shows A's own, never B's.
    assert [r.company for r in build_dashboard(user=staff_a, company_id=company_b.pk, now=NOW).rows] == [company_a]

    root = get_user_model().objects.create_superuser("root", password="pw")
    everything = build_dashboard(user=root, now=NOW)
    assert [r.company for r in everything.rows] == [company_a, company_b]
    b = everything.rows[1].figures
    assert (b.calls_today, b.calls_week, b.answered_today, b.bookings_today, b.leads_week["hot"]) == (2, 2, 1, 1, 1)
    assert (b.latency_avg_ms, b.calls_by_hour[5], b.calls_by_hour[4]) == (300, 1, 1)
    total = everything.total
    assert (total.calls_today, total.calls_week, total.bookings_week) == (5, 7, 3)
    assert total.leads_week == {"hot": 2, "warm": 1, "cold": 0}
    assert (total.latency_avg_ms, total.latency_p95_ms) == (860, 1800)  # 300, 400, 600, 1000, 2000
    assert {item.company for lst in everything.attention for item in lst.items} == {company_a, company_b}
    only_b = build_dashboard(user=root, company_id=company_b.pk, now=NOW)
    assert [r.company for r in only_b.rows] == [company_b] and only_b.total.calls_today == 2


def test_what_needs_attention(staff_a, bot_a, calls_a, trouble):
    lists = {lst.key: lst for lst in build_dashboard(user=staff_a, now=NOW).attention}
    calls = lists["calls"]
    assert calls.total == 2
    assert [item.url for item in calls.items] == [f"/admin/voicebot/call/{calls_a[k].pk}/change/"
                                                  for k in ("error", "fallback")]
    assert "Failed" in calls.items[0].detail and "fallback" in calls.items[1].detail
    assert [item.label for item in lists["documents"].items] == ["prices-a.pdf"]
    assert lists["documents"].items[0].detail == "The PDF of a has no text layer."
    [hook] = lists["webhooks"].items
    assert hook.label == "https://hooks-a.example.test/h"
    assert hook.detail == "2 gave up, 1 retrying; last error: HTTP 502 from a"
    assert [item.label for item in lists["campaigns"].items] == ["Spring a"]  # not the one staff paused


def test_a_reply_that_is_more_than_the_fallback_is_not_fallback_only(staff_a, bot_a):
    make_call(bot_a, NOW - timedelta(hours=1), replies=[(bot_a.fallback_phrase, 800), ("We open at nine.", 700)])
    lists = {lst.key: lst for lst in build_dashboard(user=staff_a, now=NOW).attention}
    assert lists["calls"].total == 0


def test_old_trouble_is_not_listed(staff_a, bot_a):
    make_call(bot_a, NOW - timedelta(days=8), status=Call.Status.FAILED, end_reason=Call.EndReason.ERROR)
    lists = {lst.key: lst for lst in build_dashboard(user=staff_a, now=NOW).attention}
    assert lists["calls"].total == 0


def today_at_local(tz) -> datetime:
    """A moment earlier today in ``tz`` (so that the page, with the real clock, counts it as today)."""
    now = timezone.now().astimezone(tz)
    start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return start + (now - start) / 2


def test_the_first_page_shows_the_figures(client_a, company_a, bot_a, company_b, bot_b, django_assert_max_num_queries):
    tz = company_a.tz
    make_call(bot_a, today_at_local(tz), replies=[("Hi.", 420)], booking={"date": "tomorrow"}, tier="hot")
    yesterday = (timezone.now().astimezone(tz) - timedelta(days=1)).replace(hour=23, minute=30)
    make_call(bot_a, yesterday, replies=[("No latency measured.", None)])
    make_call(bot_b, today_at_local(company_b.tz), replies=[("Hi.", 99)], tier="warm")
    with django_assert_max_num_queries(16):  # session, user, permissions, the figures, the lists, the admin log
        response = client_a.get("/admin/")
    html = response.content.decode()
    assert response.status_code == 200
    cells = figures_row(html, company_a)
    assert cells["calls_today"] == "1"
    assert cells["answered_today"] == "100% (1)"
    assert cells["bookings_today"] == "1"
    assert (cells["leads_hot"], cells["leads_warm"], cells["leads_cold"]) == ("1", "0", "0")
    assert (cells["latency_avg"], cells["latency_p95"]) == ("420 ms", "420 ms")
    assert "Beta Salon" not in html and f'data-company="{company_b.pk}"' not in html
    assert 'id="vb-hours"' in html and 'data-count="1"' in html
    assert "Companies, bots and calls" in html  # the app list is still there, below
    assert 'id="vb-getting-started"' not in html


def test_the_first_page_scales_in_queries(admin_client, company_a, bot_a, bot_b, django_assert_max_num_queries):
    from voicebot.models import Bot, Company

    for n in range(6):
        company = Company.objects.create(name=f"Client {n}", slug=f"client-{n}", timezone="Asia/Tokyo")
        bot = Bot.objects.create(company=company, name=f"Bot {n}", slug=f"bot-{n}", greeting="Hi.")
        make_call(bot, timezone.now() - timedelta(minutes=5), tier="cold")
        make_call(bot, timezone.now() - timedelta(minutes=4), status=Call.Status.FAILED,
                  end_reason=Call.EndReason.ERROR, caller_spoke=False)
    with django_assert_max_num_queries(14):  # as many with 8 companies as with 1
        response = admin_client.get("/admin/")
    assert response.status_code == 200
    assert response.content.decode().count('<tr data-company="') == 8


def test_the_company_picker(admin_client, company_a, company_b, bot_a, bot_b):
    make_call(bot_a, today_at_local(company_a.tz))
    make_call(bot_b, today_at_local(company_b.tz))
    both = admin_client.get("/admin/").content.decode()
    assert 'id="vb-picker"' in both and both.count('<tr data-company="') == 2 and 'class="vb-total"' in both
    only_b = admin_client.get(f"/admin/?company={company_b.pk}").content.decode()
    assert f'<tr data-company="{company_b.pk}">' in only_b and f'<tr data-company="{company_a.pk}">' not in only_b
    assert figures_row(only_b, company_b)["calls_week"] == "1" and 'class="vb-total"' not in only_b
    assert f'<option value="{company_b.pk}" selected>' in only_b


def test_links_go_to_filtered_lists_that_hold_the_item(client_a, bot_a, trouble):
    tz = bot_a.company.tz
    make_call(bot_a, today_at_local(tz), status=Call.Status.FAILED, end_reason=Call.EndReason.ERROR,
              caller_spoke=False)
    make_call(bot_a, (timezone.now().astimezone(tz) - timedelta(days=1)).replace(hour=23, minute=30))
    dashboard_html = client_a.get("/admin/").content.decode()
    for key, expected, absent in (("documents", "prices-a.pdf", "hours-a.txt"),
                                  ("webhooks", "hooks-a.example.test", "ok-a.example.test"),
                                  ("campaigns", "Spring a", "Paused by staff a"),
                                  ("calls", "+4930999", None)):
        section = re.search(rf'id="vb-attention-{key}">(.*?)</div>', dashboard_html, re.S).group(1)
        link = re.search(r'<a href="([^"]+)" class="vb-all">', section).group(1).replace("&amp;", "&")
        listing = client_a.get(link)
        assert listing.status_code == 200, link
        html = listing.content.decode()
        assert expected in html and "?e=1" not in listing.get("Location", ""), (key, link)
        if absent:
            assert absent not in html, (key, link)
    # A company's call counts open the calls list from its local midnight (today) or Monday (this week).
    today_link = re.search(r'data-figure="calls_today"><a href="([^"]+)"', dashboard_html).group(1)
    listing = client_a.get(today_link.replace("&amp;", "&"))
    assert listing.status_code == 200
    assert re.search(r'class="paginator">\s*1 call\b', listing.content.decode())
    # Each item opens its own row.
    doc = trouble["doc_a"]
    assert f'/admin/knowledge/knowledgedocument/{doc.pk}/change/' in dashboard_html
    assert client_a.get(f"/admin/knowledge/knowledgedocument/{doc.pk}/change/").status_code == 200


def test_getting_started_when_no_call_yet(client_a, bot_a):
    html = client_a.get("/admin/").content.decode()
    hint = re.search(r'id="vb-getting-started">(.*?)</div>', html, re.S).group(1)
    assert f"/admin/try-bot/{bot_a.pk}/" in hint and f"/admin/voicebot/bot/{bot_a.pk}/test-call/" in hint
    assert client_a.get(f"/admin/try-bot/{bot_a.pk}/").status_code == 200


@pytest.mark.django_db
def test_the_first_page_renders_for_staff_without_companies(client, company_b, bot_b):
    make_call(bot_b, timezone.now() - timedelta(minutes=1))
    client.force_login(make_staff("nobody"))
    response = client.get("/admin/")
    html = response.content.decode()
    assert response.status_code == 200
    assert 'id="vb-no-companies"' in html and "Beta" not in html and "data-company" not in html


def test_the_first_page_renders_for_a_superuser_with_nothing(admin_client):
    response = admin_client.get("/admin/")
    assert response.status_code == 200 and 'id="vb-no-companies"' in response.content.decode()
