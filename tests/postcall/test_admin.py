"""Admin: call list filters and columns, the call page panel, deliveries with replay, tenant isolation."""

from datetime import date

import pytest

from postcall import processing, reports
from postcall.models import Lead, WebhookDelivery
from tests.postcall.conftest import BOOKING_SCENARIOS, DEAD_LLM, make_endpoint, store_call
from voicebot import llm_endpoint
from voicebot.models import Call


@pytest.fixture(autouse=True)
def dead_llm(monkeypatch):
    monkeypatch.setenv("VOICEBOT_LLM_BASE_URL", DEAD_LLM)
    llm_endpoint.base_url.cache_clear()
    yield
    llm_endpoint.base_url.cache_clear()


@pytest.fixture
def processed(bot_a, bot_b, private_webhooks):
    bot_a.scenarios = BOOKING_SCENARIOS
    bot_a.save()
    make_endpoint(bot_a.company, "http://127.0.0.1:8114/hook")
    make_endpoint(bot_b.company, "http://127.0.0.1:8115/hook")
    booked = store_call(bot_a)
    chat = store_call(bot_a, transport=Call.Transport.CHAT, from_number="", scenario="", collected={},
                      turns=[("caller", "Are you open on Sunday?", None, False), ("bot", "No.", 700, False)])
    other = store_call(bot_b, from_number="+12125550111")
    for call in (booked, chat, other):
        processing.process(call.pk)
    return {"booked": booked, "chat": chat, "other": other}


def test_call_list_filters_by_outcome_and_lead_score(client_a, processed):
    page = client_a.get("/admin/voicebot/call/", {"outcome": "booking"}).content.decode()
    assert f"/admin/voicebot/call/{processed['booked'].pk}/change/" in page
    assert f"/admin/voicebot/call/{processed['chat'].pk}/change/" not in page
    page = client_a.get("/admin/voicebot/call/", {"lead": "none"}).content.decode()
    assert f"/admin/voicebot/call/{processed['chat'].pk}/change/" in page
    assert f"/admin/voicebot/call/{processed['booked'].pk}/change/" not in page
    page = client_a.get("/admin/voicebot/call/", {"lead": "hot"}).content.decode()
    assert f"/admin/voicebot/call/{processed['booked'].pk}/change/" in page
    assert "Booking made" in page and "Hot (70)" in page
    assert f"/admin/voicebot/call/{processed['other'].pk}/change/" not in page  # another company's call


def test_call_page_shows_summary_outcome_and_lead_beside_the_transcript(client_a, processed):
    page = client_a.get(f"/admin/voicebot/call/{processed['booked'].pk}/change/").content.decode()
    assert "The caller said:" in page and "Booking made" in page and "Maria Lopez" in page
    assert "asked_booking +20" in page and "call.ended" in page
    panel, transcript = page.index("vb-postcall"), page.index("vb-transcript")
    assert 0 < panel < transcript
    assert "field-postcall_panel" in page and "field-conversation" in page  # one fieldset row, side by side


def test_staff_see_only_their_companys_postcall_rows(client_a, processed):
    other_lead = Lead.objects.get(call=processed["other"])
    other_delivery = WebhookDelivery.objects.filter(endpoint__company=processed["other"].company).first()
    leads = client_a.get("/admin/postcall/lead/").content.decode()
    assert "Maria Lopez" in leads and "+12125550111" not in leads
    assert client_a.get(f"/admin/postcall/lead/{other_lead.pk}/change/").status_code == 302  # "not found"
    deliveries = client_a.get("/admin/postcall/webhookdelivery/").content.decode()
    assert "8114" in deliveries and "8115" not in deliveries
    assert client_a.get(f"/admin/postcall/webhookdelivery/{other_delivery.pk}/change/").status_code == 302
    endpoints = client_a.get("/admin/postcall/webhookendpoint/").content.decode()
    assert "8114" in endpoints and "8115" not in endpoints
    form = client_a.get("/admin/postcall/webhookendpoint/add/").content.decode()
    assert "Alpha Dental" in form and "Beta Salon" not in form
    response = client_a.post("/admin/postcall/webhookendpoint/add/", {
        "company": processed["other"].company.pk, "url": "http://127.0.0.1:8116/h", "events": ["call.ended"],
        "secret": "s"})
    assert response.status_code == 200 and "Select a valid choice" in response.content.decode()


def test_replay_action_queues_the_delivery_again(client_a, processed, django_capture_on_commit_callbacks):
    delivery = WebhookDelivery.objects.filter(endpoint__company=processed["booked"].company).first()
    page = client_a.get(f"/admin/postcall/webhookdelivery/{delivery.pk}/change/").content.decode()
    assert str(delivery.pk) in page and delivery.event in page and "Attempts" in page
    with django_capture_on_commit_callbacks() as callbacks:
        response = client_a.post("/admin/postcall/webhookdelivery/", {
            "action": "replay_deliveries", "_selected_action": [str(delivery.pk)]})
    assert response.status_code == 302
    assert len(callbacks) == 1


def test_report_page_has_the_chart(client_a, processed):
    report = reports.build_report(processed["booked"].company, "day",
                                  processed["booked"].started_at.astimezone(processed["booked"].company.tz).date())
    page = client_a.get(f"/admin/postcall/report/{report.pk}/change/").content.decode()
    assert "<svg" in page and "Calls by hour" in page and "calls," in page
    other = reports.build_report(processed["other"].company, "day", date.today())
    assert client_a.get(f"/admin/postcall/report/{other.pk}/change/").status_code == 302


def test_send_test_event_action(client_a, processed, django_capture_on_commit_callbacks):
    endpoint = processed["booked"].company.webhook_endpoints.get()
    with django_capture_on_commit_callbacks() as callbacks:
        response = client_a.post("/admin/postcall/webhookendpoint/", {
            "action": "send_test_event", "_selected_action": [str(endpoint.pk)]})
    assert response.status_code == 302 and len(callbacks) == 1
    delivery = WebhookDelivery.objects.get(endpoint=endpoint, event="webhook.test")
    assert delivery.payload["event"] == "webhook.test" and delivery.payload["id"] == str(delivery.pk)


def test_scoring_rules_offer_only_the_staffs_own_bots(client_a, bot_a, bot_b):
    form = client_a.get("/admin/postcall/leadscoringrules/add/").content.decode()
    assert "Alpha front desk" in form and "Beta front desk" not in form
    response = client_a.post("/admin/postcall/leadscoringrules/add/", {
        "bot": bot_a.pk, "rules": '[{"signal": "asked_price", "points": "many", "keywords": ["price"]}]',
        "hot_threshold": 40, "warm_threshold": 20})
    assert response.status_code == 200 and "rules[0].points: a whole number" in response.content.decode()
