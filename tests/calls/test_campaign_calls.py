"""A campaign end to end: Celery beat's dialler tick (run here, as beat runs it), the dial task, the
fake Twilio cloud ringing callees who are busy, answer and talk, or fail, and the runner on the real
models. The dialler's rules one by one (windows with a frozen clock, limits, retries, two workers)
are tested in tests/campaigns/; here they meet real calls."""

import pytest

from campaigns.dialer import tick
from campaigns.models import Campaign, Contact
from pipelines.live.fake_twilio import Answers, Busy, Fails, HangUp, Say, WaitBot
from tests.campaigns.conftest import add, make_campaign
from tests.waiting import wait_until
from voicebot.models import Call

pytestmark = [pytest.mark.models, pytest.mark.django_db(transaction=True)]

DANA, ALEX = "+4915112345671", "+4915112345672"


def dial_until(done, timeout: float, what: str):
    """Tick the dialler (as beat does) until ``done()``."""
    return wait_until(lambda: (tick(), done())[1], timeout, what=what, interval=0.5)


def most_at_once(fake_calls) -> int:
    """The most calls the fake had ringing or connected at the same moment."""
    edges = sorted([(c.created_at, 1) for c in fake_calls] + [(c.ended_at, -1) for c in fake_calls])
    current = peak = 0
    for _, step in edges:
        current += step
        peak = max(peak, current)
    return peak


def test_a_busy_contact_is_called_again_and_reached_one_call_at_a_time(cloud, caller_bot, lines):
    talks = Answers(script=[Say(str(lines["hello"])), WaitBot(), HangUp()])
    cloud.callee(DANA, [Busy(), talks])  # busy first, then picks up
    cloud.callee(ALEX, talks)
    campaign = make_campaign(caller_bot, max_concurrent_calls=1, retry_busy_minutes=0)
    add(campaign, DANA, name="Dana")
    add(campaign, ALEX, name="Alex")
    dial_until(lambda: not Contact.objects.filter(campaign=campaign).exclude(status="done").exists(), 150,
               "both contacts to be reached")
    dana, alex = (Contact.objects.get(campaign=campaign, phone=phone) for phone in (DANA, ALEX))
    assert [a.result for a in dana.attempts.order_by("number")] == ["busy", "completed"]
    assert [a.result for a in alex.attempts.all()] == ["completed"]
    assert most_at_once(cloud.calls.values()) == 1 and len(cloud.calls) == 3
    answered = Call.objects.filter(campaign_attempt__campaign=campaign, status="completed").order_by("pk")
    greetings = [call.turns.filter(role="bot").first().text for call in answered]
    assert sorted(greetings) == ["Hi Alex, this is the front desk calling about your visit.",
                                 "Hi Dana, this is the front desk calling about your visit."]
    dial_until(lambda: Campaign.objects.get(pk=campaign.pk).status == "completed", 30, "the campaign to finish")


def test_the_circuit_breaker_pauses_a_campaign_whose_calls_fail(cloud, caller_bot):
    cloud.default = Fails()  # every call fails at the provider
    campaign = make_campaign(caller_bot, max_concurrent_calls=3, calls_per_minute=60, breaker_min_calls=5)
    add(campaign, *[f"+491511234560{i}" for i in range(8)])
    dial_until(lambda: Campaign.objects.get(pk=campaign.pk).status == "paused", 60, "the breaker to pause it")
    campaign.refresh_from_db()
    assert campaign.status_note.startswith("paused by the circuit breaker:") and "failed" in campaign.status_note
    placed = len(cloud.calls)
    assert 5 <= placed < 8
    for _ in range(3):
        tick()
    assert len(cloud.calls) == placed  # paused: nobody else is called
    assert Contact.objects.filter(campaign=campaign, status="pending").exists()
