"""process_call's work, in process: outcome, lead, summary fallback, idempotency, events queued once."""

import pytest

from postcall import processing, summary
from postcall.models import CallOutcome, Lead, WebhookDelivery
from tests.postcall.conftest import BOOKING_SCENARIOS, DEAD_LLM, make_endpoint, store_call
from voicebot import llm_endpoint
from voicebot.models import Call


@pytest.fixture
def dead_llm(monkeypatch):
    monkeypatch.setenv("VOICEBOT_LLM_BASE_URL", DEAD_LLM)
    llm_endpoint.base_url.cache_clear()
    yield
    llm_endpoint.base_url.cache_clear()


@pytest.fixture
def booking_bot(bot_a):
    bot_a.scenarios = BOOKING_SCENARIOS
    bot_a.save()
    return bot_a


def test_llm_down_still_gives_outcome_lead_and_a_factual_summary(booking_bot, dead_llm, private_webhooks):
    make_endpoint(booking_bot.company, "http://127.0.0.1:8111/hook")
    call = store_call(booking_bot)
    outcome = processing.process(call.pk)
    assert outcome.result == CallOutcome.Result.BOOKING
    assert outcome.summary_source == "fallback"
    assert outcome.summary.startswith('The caller said: "Hi, my name is Maria Lopez.')
    assert "service cleaning" in outcome.summary
    lead = Lead.objects.get(call=call)
    assert (lead.name, lead.phone) == ("Maria Lopez", "+4915123456789")
    assert lead.contact_sources == {"name": "transcript", "phone": "scenario"}
    # asked price 10 + asked booking 20 + gave phone 15 + gave name 5 + booking 20
    assert lead.score == 70 and lead.tier == "hot"
    call.refresh_from_db()
    assert call.analytics["latency_median_ms"] == 1200
    events = sorted(WebhookDelivery.objects.filter(event_key=f"call:{call.pk}").values_list("event", flat=True))
    assert events == ["booking.created", "call.ended", "lead.captured"]


def test_running_twice_changes_nothing_twice(booking_bot, dead_llm, private_webhooks, django_capture_on_commit_callbacks):
    make_endpoint(booking_bot.company, "http://127.0.0.1:8111/hook")
    call = store_call(booking_bot)
    with django_capture_on_commit_callbacks() as first:
        outcome = processing.process(call.pk)
    processed_at = outcome.processed_at
    with django_capture_on_commit_callbacks() as second:
        again = processing.process(call.pk)
    assert again.pk == outcome.pk and again.processed_at == processed_at
    assert CallOutcome.objects.filter(call=call).count() == 1
    assert Lead.objects.filter(call=call).count() == 1
    assert WebhookDelivery.objects.filter(event_key=f"call:{call.pk}").count() == 3
    assert len(first) == 3  # one send per delivery
    assert len(second) == 3  # still untried: queued again, and each attempt is guarded to run once


def test_a_chat_without_contact_is_answered_without_a_lead(bot_a, dead_llm):
    call = store_call(bot_a, transport=Call.Transport.CHAT, from_number="", scenario="", collected={},
                      turns=[("caller", "What are your opening hours?", None, False),
                             ("bot", "We open at nine.", 800, False)])
    outcome = processing.process(call.pk)
    assert (outcome.result, outcome.intent, outcome.intent_source) == ("information", "support", "transcript")
    assert not Lead.objects.filter(call=call).exists()


def test_a_call_where_nobody_spoke(bot_a, dead_llm):
    call = store_call(bot_a, scenario="", collected={}, turns=[("bot", "Hello?", None, False)])
    outcome = processing.process(call.pk)
    assert outcome.result == "no_conversation"
    assert outcome.summary == "The caller did not say anything."
    assert not Lead.objects.filter(call=call).exists()


def test_missing_call_is_not_an_error(db):
    assert processing.process(987654) is None


@pytest.mark.parametrize("answer", ["", "I'm sorry, I cannot help with that.", "Bananas grow on tropical trees.",
                                    "ok", "Agent: hello. Caller: I want to book a cleaning for Tuesday"])
def test_junk_llm_answers_are_rejected(answer):
    assert summary.clean_summary(answer, "Caller: I want to book a cleaning for Tuesday") is None


def test_a_usable_llm_answer_is_kept_and_bounded(settings):
    settings.POSTCALL_SUMMARY_MAX_CHARS = 60
    text = summary.clean_summary("Summary: The caller booked a cleaning for Tuesday. " * 3,
                                 "Caller: I want to book a cleaning for Tuesday")
    assert text == "The caller booked a cleaning for Tuesday."


def test_llm_fields_are_kept_only_when_the_caller_said_them(monkeypatch):
    from voicebot.models import CallTurn

    turns = [CallTurn(role="caller", text="I want a whitening on Friday", index=0)]
    monkeypatch.setattr(summary, "chat", lambda *a, **k: 'Sure! {"service": "whitening", "date": "Monday"}')
    assert summary.llm_fields(turns, [{"name": "service"}, {"name": "date"}]) == {"service": "whitening"}


def test_requeue_stalled_sends_due_deliveries_and_processes_forgotten_calls(bot_a, private_webhooks, receiver,
                                                                            dead_llm,
                                                                            django_capture_on_commit_callbacks):
    from datetime import timedelta

    from django.utils import timezone

    from postcall.tasks import requeue_stalled
    from voicebot.celery import app

    hook = receiver()
    endpoint = make_endpoint(bot_a.company, hook.url, events=["lead.captured"])
    due = WebhookDelivery.objects.create(endpoint=endpoint, event="lead.captured", event_key="x:1", payload={},
                                         status="retrying", attempts=2,
                                         next_attempt_at=timezone.now() - timedelta(hours=1))
    waiting = WebhookDelivery.objects.create(endpoint=endpoint, event="lead.captured", event_key="x:2", payload={},
                                             status="retrying", attempts=1,
                                             next_attempt_at=timezone.now() + timedelta(minutes=5))
    ended = timezone.now() - timedelta(minutes=10)
    forgotten = store_call(bot_a, started_at=ended - timedelta(minutes=2), ended_at=ended)  # never queued
    recent = store_call(bot_a)
    recent.ended_at = timezone.now()
    recent.save()
    app.conf.task_always_eager = True  # run what it queues here, in this process
    try:
        with django_capture_on_commit_callbacks(execute=True):
            assert requeue_stalled() == {"deliveries": 1, "calls": 1}
    finally:
        app.conf.task_always_eager = False
    due.refresh_from_db()
    assert (due.status, due.attempts) == ("delivered", 3)
    assert list(due.attempt_log.values_list("number", "response_code")) == [(3, 200)]
    assert WebhookDelivery.objects.get(pk=waiting.pk).status == "retrying"
    assert CallOutcome.objects.filter(call=forgotten).exists()
    assert not CallOutcome.objects.filter(call=recent).exists()  # may still be on its way
    # The forgotten call's lead.captured went out as well (queued on commit, run eagerly).
    events = [(r["headers"]["X-Voicebot-Delivery"], r["headers"]["X-Voicebot-Event"]) for r in hook.requests]
    assert events[0] == (str(due.pk), "lead.captured") and len(events) == 2


def test_long_backoffs_are_left_to_the_beat_sweeper(bot_a, private_webhooks, receiver, settings):
    from postcall.tasks import deliver_webhook

    settings.POSTCALL_WEBHOOK_MAX_COUNTDOWN_SEC = 5  # the first backoff (10 s) is longer
    hook = receiver(default="503")
    endpoint = make_endpoint(bot_a.company, hook.url, events=["call.ended"])
    delivery = WebhookDelivery.objects.create(endpoint=endpoint, event="call.ended", event_key="y:1", payload={})
    assert deliver_webhook.apply((str(delivery.pk), 1)).get() == 1  # no countdown retry was queued
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.last_response_code) == ("retrying", 1, 503)
    assert 9 <= (delivery.next_attempt_at - delivery.attempt_log.get().attempted_at).total_seconds() <= 11
    assert len(hook.requests) == 1


def test_an_inactive_endpoint_gets_nothing(bot_a, private_webhooks, receiver):
    from postcall.webhooks import attempt

    hook = receiver()
    endpoint = make_endpoint(bot_a.company, hook.url, events=["call.ended"])
    delivery = WebhookDelivery.objects.create(endpoint=endpoint, event="call.ended", event_key="z:1", payload={})
    endpoint.active = False
    endpoint.save()
    assert attempt(str(delivery.pk), 1) is None
    delivery.refresh_from_db()
    assert (delivery.status, delivery.last_error) == ("failed", "Not sent: the endpoint is inactive.")
    assert hook.requests == []


def test_an_outbound_call_leads_to_the_callee_and_its_variables_reach_the_webhook(bot_a, dead_llm, private_webhooks):
    make_endpoint(bot_a.company, "http://127.0.0.1:8111/hook")
    turns = [("bot", "Hi Dana, this is Alpha about your visit.", None, False),
             ("caller", "Yes, I would like to book a cleaning.", None, False)]
    call = store_call(bot_a, turns=turns, collected={}, scenario="", direction="outbound",
                      variables={"name": "Dana", "appointment_time": "3 pm"})
    processing.process(call.pk)
    lead = Lead.objects.get(call=call)
    assert (lead.phone, lead.contact_sources["phone"]) == ("+4930123456", "caller_id")  # the callee, not the bot
    ended = WebhookDelivery.objects.get(event="call.ended", event_key=f"call:{call.pk}")
    assert ended.payload["data"]["call"]["variables"] == {"name": "Dana", "appointment_time": "3 pm"}
    assert ended.payload["data"]["call"]["direction"] == "outbound"


def test_a_voicemail_is_no_conversation(bot_a, dead_llm, private_webhooks):
    turns = [("caller", "Hi, you have reached Sam. Please leave a message after the tone.", None, False),
             ("bot", "Hi Sam, please call us back.", None, False)]
    call = store_call(bot_a, turns=turns, collected={}, scenario="", direction="outbound", status="voicemail")
    assert processing.process(call.pk).result == CallOutcome.Result.NO_CONVERSATION
