"""With a real Celery worker on Redis: a stored call becomes outcome, lead and signed webhooks."""

import json
import time

import pytest

from postcall.models import CallOutcome, Lead, WebhookAttempt, WebhookDelivery
from postcall.tasks import process_call
from postcall.webhooks import verify_signature
from tests.postcall.conftest import BOOKING_SCENARIOS, make_endpoint, store_call, wait_until

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_stored_call_yields_summary_outcome_lead_and_a_verified_call_ended(postcall_worker, bot_a, receiver):
    bot_a.scenarios = BOOKING_SCENARIOS
    bot_a.save()
    hook = receiver()
    endpoint = make_endpoint(bot_a.company, hook.url, secret="whsec_alpha")
    call = store_call(bot_a, on_commit=lambda pk: process_call.delay(pk))

    requests = hook.wait_for(3, timeout=90)
    outcome = CallOutcome.objects.get(call=call)
    lead = Lead.objects.get(call=call)
    assert outcome.result == "booking" and outcome.summary
    expected_source = "fallback" if postcall_worker["llm_url"].endswith(":9/v1") else ("llm", "fallback")
    assert outcome.summary_source in expected_source
    assert (lead.phone, lead.tier) == ("+4915123456789", "hot")

    by_event = {r["headers"]["X-Voicebot-Event"]: r for r in requests}
    assert set(by_event) == {"call.ended", "lead.captured", "booking.created"}
    ended = by_event["call.ended"]
    assert verify_signature("whsec_alpha", ended["headers"]["X-Voicebot-Signature"], ended["body"])
    assert not verify_signature("whsec_wrong", ended["headers"]["X-Voicebot-Signature"], ended["body"])
    payload = json.loads(ended["body"])
    assert payload["id"] == ended["headers"]["X-Voicebot-Delivery"]
    assert payload["data"]["summary"] == outcome.summary
    assert payload["data"]["outcome"]["booking"]["service"] == "cleaning"
    assert payload["data"]["lead"]["score"] == lead.score
    assert [t["text"] for t in payload["data"]["transcript"]][1].startswith("Hi, my name is Maria")
    delivery_ids = {r["headers"]["X-Voicebot-Delivery"] for r in requests}
    assert len(delivery_ids) == 3
    wait_until(lambda: endpoint.deliveries.filter(status="delivered").count() == 3)
    assert WebhookAttempt.objects.filter(delivery__endpoint=endpoint).count() == 3

    # Queuing the same call again changes and sends nothing more.
    process_call.delay(call.pk).get(timeout=30)
    time.sleep(1.0)
    assert len(hook.requests) == 3
    assert CallOutcome.objects.filter(call=call).count() == 1


def test_receiver_down_then_back_gets_one_request_per_attempt_until_2xx(postcall_worker, bot_a, receiver):
    # Two 503s, then the receiver is gone (connection refused), then it comes back and answers 200.
    hook = receiver(script=["503", "503"])
    make_endpoint(bot_a.company, hook.url, events=["call.ended"])
    call = store_call(bot_a, scenario="", collected={}, on_commit=lambda pk: process_call.delay(pk))
    hook.wait_for(2, timeout=60)
    port = hook.port
    hook.stop()
    delivery = WebhookDelivery.objects.get(event_key=f"call:{call.pk}")
    wait_until(lambda: delivery.attempt_log.filter(response_code__isnull=True).exists(), timeout=30)
    back = receiver(port=port)  # the same URL answers again
    back.wait_for(1, timeout=30)
    wait_until(lambda: WebhookDelivery.objects.get(pk=delivery.pk).status == "delivered", timeout=30)
    time.sleep(3)  # longer than the longest retry delay: nothing more may arrive

    attempts = list(delivery.attempt_log.order_by("number"))
    codes = [a.response_code for a in attempts]
    assert codes[:2] == [503, 503] and codes[-1] == 200
    assert all(code is None for code in codes[2:-1]) and len(codes) >= 4
    assert [a.number for a in attempts] == list(range(1, len(attempts) + 1))
    assert all("Connect" in a.error for a in attempts[2:-1])
    assert len(back.requests) == 1  # exactly once more after it came back
    seen = hook.requests + back.requests
    assert {r["headers"]["X-Voicebot-Delivery"] for r in seen} == {str(delivery.pk)}
    gaps = [b.attempted_at - a.attempted_at for a, b in zip(attempts, attempts[1:])]
    assert all(g.total_seconds() >= 0.4 for g in gaps)  # retries wait for the backoff
    delivery.refresh_from_db()
    assert (delivery.attempts, delivery.last_response_code) == (len(attempts), 200)


def test_a_4xx_is_not_retried_and_replay_sends_the_same_delivery_again(postcall_worker, bot_a, receiver):
    hook = receiver(script=["410"])
    make_endpoint(bot_a.company, hook.url, events=["call.ended"])
    call = store_call(bot_a, scenario="", collected={}, on_commit=lambda pk: process_call.delay(pk))
    delivery = wait_until(lambda: WebhookDelivery.objects.filter(event_key=f"call:{call.pk}", status="failed").first())
    assert delivery.attempts == 1 and delivery.last_response_code == 410

    from django.db import transaction

    from postcall.webhooks import replay

    with transaction.atomic():
        replay(delivery)
    wait_until(lambda: WebhookDelivery.objects.get(pk=delivery.pk).status == "delivered")
    assert [r["headers"]["X-Voicebot-Delivery"] for r in hook.requests] == [str(delivery.pk)] * 2
    last = delivery.attempt_log.order_by("number").last()
    assert (last.number, last.response_code, last.replay) == (2, 200, True)


def test_scheduled_report_through_the_worker_has_only_the_companys_calls(postcall_worker, bot_a, bot_b, receiver):
    from datetime import timedelta

    from django.utils import timezone

    from postcall.models import Report, ReportSchedule
    from postcall.tasks import send_scheduled_report

    yesterday = timezone.now().astimezone(bot_a.company.tz) - timedelta(days=1)
    yesterday = yesterday.replace(hour=11, minute=0)
    for _ in range(2):
        store_call(bot_a, started_at=yesterday, ended_at=yesterday + timedelta(minutes=2))
    for _ in range(3):
        store_call(bot_b, started_at=yesterday, ended_at=yesterday + timedelta(minutes=1))
    hook_a, hook_b = receiver(), receiver()
    make_endpoint(bot_a.company, hook_a.url, events=["report.ready"], secret="a-secret")
    make_endpoint(bot_b.company, hook_b.url, events=["report.ready"], secret="b-secret")
    schedule = ReportSchedule.objects.create(company=bot_a.company, period="day", hour=7)

    report_id = send_scheduled_report.delay(schedule.pk).get(timeout=60)
    report = Report.objects.get(pk=report_id)
    assert report.company == bot_a.company
    assert (report.data["calls"], report.data["answered"], report.data["average_duration_sec"]) == (2, 2, 120.0)
    assert report.data["busiest_hours"] == [11]
    request = hook_a.wait_for(1)[0]
    assert request["headers"]["X-Voicebot-Event"] == "report.ready"
    assert verify_signature("a-secret", request["headers"]["X-Voicebot-Signature"], request["body"])
    assert json.loads(request["body"])["data"]["figures"]["calls"] == 2
    time.sleep(0.5)
    assert hook_b.requests == []
    assert not Report.objects.filter(company=bot_b.company).exists()
