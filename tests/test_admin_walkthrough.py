"""A staff user's first walk through admin in headless Chromium at 1366 px, against the served app:
the dashboard with today's figures, a call page, Try this bot answering from the documents. Every
page fits the window (no horizontal scrolling) and shows its key elements.

With ``VOICEBOT_SCREENSHOTS_DIR`` set (``make screenshots``), the pages are also saved there as
PNG (README's screenshots under docs/).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from django.core.management import call_command
from django.utils import timezone

from knowledge.models import KnowledgeDocument
from knowledge.tasks import ingest_document
from postcall.models import CallOutcome, Lead
from voicebot.models import Bot, Call, CallTurn

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
WIDTH, HEIGHT = 1366, 768
SHOTS = os.environ.get("VOICEBOT_SCREENSHOTS_DIR")

pytestmark = [pytest.mark.browser, pytest.mark.models, pytest.mark.django_db(transaction=True),
              pytest.mark.skipif(CHROMIUM is None, reason="no Chromium on this machine (apt-get install chromium)")]


@pytest.fixture
def demo_world():
    """The demo salon (seed_demo), its documents ingested, and one booked call of today."""
    call_command("seed_demo", documents=True, stdout=open(os.devnull, "w"))
    for document in KnowledgeDocument.objects.all():
        ingest_document(document.pk)  # the worker's task, run here
    bot = Bot.objects.get(slug="elegant-receptionist")
    started = timezone.now() - timezone.timedelta(minutes=5)
    call = Call.objects.create(company=bot.company, bot=bot, transport="twilio", external_id="CAwalk",
                               from_number="+12125550123", to_number="+15550100200", started_at=started,
                               ended_at=started + timezone.timedelta(seconds=95), end_reason="caller_hangup",
                               scenario="booking", collected_fields={"service": "manicure", "date": "2026-12-08",
                                                                     "time": "16:30", "phone": "+12125550123"})
    lines = [("bot", "Hello! Elegant beauty salon. How can I help?"), ("caller", "I'd like to book a manicure"),
             ("bot", "Which day?"), ("caller", "next Tuesday at half past four"),
             ("bot", "You're booked. See you soon!")]
    for index, (role, text) in enumerate(lines):
        CallTurn.objects.create(call=call, index=index, role=role, text=text, start_ms=index * 5000,
                                latency_ms=640 if role == "bot" and index else None)
    CallOutcome.objects.create(call=call, company=bot.company, result="booking", intent="booking",
                               summary="The caller booked a manicure for Tuesday, December 8 at 4:30 PM.",
                               summary_source="scenario", booking=call.collected_fields)
    Lead.objects.create(call=call, company=bot.company, bot=bot, phone="+12125550123", score=45, tier="hot")
    return bot, call


def fits(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def shot(page, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"))


def test_staff_walk_the_dashboard_a_call_and_try_this_bot_at_1366_px(live_api, demo_world):
    from playwright.sync_api import sync_playwright

    bot, call = demo_world
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        page = chromium.new_page(viewport={"width": WIDTH, "height": HEIGHT})
        page.goto(f"{live_api}/admin/login/")
        page.fill("#id_username", "demo")
        page.fill("#id_password", "demo-voicebot")
        page.click("input[type=submit]")
        page.wait_for_selector("#vb-dashboard")

        # The dashboard: today's figures, the calls-per-hour chart, what needs attention.
        figures = page.inner_text("#vb-figures").lower()  # column heads are styled in capitals
        assert "calls" in figures and "bookings" in figures and "elegant beauty salon" in figures, figures
        assert "640 ms" in figures  # today's booked call's reply latency
        assert page.is_visible("#vb-hours") and page.is_visible("#vb-attention-title")
        assert fits(page), "the dashboard scrolls sideways at 1366 px"
        shot(page, "dashboard")

        # The call page: what happened first (summary, outcome, lead, fields), then the transcript.
        page.goto(f"{live_api}/admin/voicebot/call/{call.pk}/change/")
        text = page.inner_text("#content")
        summary_at = text.index("The caller booked a manicure")
        assert summary_at < text.index("next Tuesday at half past four")  # before the transcript
        assert "manicure" in page.inner_text("body") and "America/New_York" in text  # the company's zone
        assert fits(page), "the call page scrolls sideways at 1366 px"
        shot(page, "call")

        page.goto(f"{live_api}/admin/voicebot/call/")
        header = page.inner_text("#result_list thead")
        assert "Outcome" in header or "outcome" in header.lower(), header
        assert fits(page), "the calls list scrolls sideways at 1366 px"

        # Try this bot: a price from the price list, with what the reply was based on.
        page.goto(f"{live_api}/admin/try-bot/{bot.pk}/")
        page.fill("textarea[name=message], input[name=message]", "How much is a gel manicure?")
        page.keyboard.press("Enter") if page.is_visible("input[name=message]") else page.click(
            "button[type=submit], input[type=submit]")
        page.wait_for_selector("text=35", timeout=60000)
        chat = page.inner_text("#vb-chat")
        assert "35" in chat, chat
        assert "price-list.md" in page.inner_text("body")  # the passage used, with its document
        assert fits(page), "Try this bot scrolls sideways at 1366 px"
        shot(page, "try-this-bot")
        chromium.close()
