"""Many dialers at once (several workers, overlapping ticks) never call one contact twice or exceed the room.

Real concurrent transactions on PostgreSQL, one connection per thread.
"""

from __future__ import annotations

import threading

import pytest
from django.db import connection, transaction
from django.utils import timezone

from campaigns import dialer
from campaigns.models import Attempt, Contact
from tests.campaigns.conftest import PHONES, add, make_campaign
from tests.waiting import wait_until
from voicebot.outbound_calls import record_status

pytestmark = pytest.mark.django_db(transaction=True)


def in_thread(target, *args):
    """Run ``target`` on its own thread and database connection; returns (thread, {"result"/"error"})."""
    out = {}

    def run():
        try:
            out["result"] = target(*args)
        except Exception as exc:  # noqa: BLE001  (whatever it is, the test reports it)
            out["error"] = exc
        finally:
            connection.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, out


def test_a_contact_locked_by_another_dialer_is_skipped_not_waited_for(bot_a, number_a, dial_tasks):
    campaign = make_campaign(bot_a, max_concurrent_calls=2)
    locked, *others = add(campaign, *PHONES[:3])
    holding, release = threading.Event(), threading.Event()

    def hold():  # another dialer that has claimed the first contact and not committed yet
        with transaction.atomic():
            Contact.objects.select_for_update().get(pk=locked.pk)
            holding.set()
            release.wait(30)

    holder, _ = in_thread(hold)
    wait_until(holding.is_set, 10, what="the other dialer's claim")
    ticker, out = in_thread(dialer.tick)
    ticker.join(10)
    try:
        assert not ticker.is_alive(), "the tick waited for the locked contact"
        assert "error" not in out, out.get("error")
        assert out["result"].placed == 2
        assert set(Attempt.objects.values_list("contact_id", flat=True)) == {c.pk for c in others}
        assert Contact.objects.get(pk=locked.pk).status == "pending"
    finally:
        release.set()
        holder.join(10)


def test_overlapping_ticks_place_each_contact_once_within_the_room(bot_a, number_a, dial_tasks):
    bot_a.company.max_lines = 0
    bot_a.company.save()
    campaign = make_campaign(bot_a, max_concurrent_calls=3, calls_per_minute=600)
    add(campaign, *PHONES)
    for _round in range(3):
        start = threading.Barrier(6)

        def racing_tick(barrier):
            barrier.wait(10)
            return dialer.tick()

        threads = [in_thread(racing_tick, start) for _ in range(6)]
        for thread, out in threads:
            thread.join(30)
            assert "error" not in out, out.get("error")
        assert Attempt.objects.filter(settled_at__isnull=True).count() <= 3
        dialer.tick()  # a tick that lost the race for the campaign leaves room to the next one
        in_flight = list(Attempt.objects.filter(settled_at__isnull=True).select_related("call"))
        assert len(in_flight) == 3
        for attempt in in_flight:  # the calls end: the next round's ticks settle them and place the next three
            record_status(call_id=attempt.call_id, status="completed")
            attempt.call.end_reason = "goodbye"
            attempt.call.save(update_fields=["end_reason"])
    attempts = list(Attempt.objects.values_list("contact_id", "number"))
    assert len(attempts) == 9 and len({contact for contact, _ in attempts}) == 9  # nine contacts, once each
    assert len(dial_tasks) == 9 and len({call for _, call in dial_tasks}) == 9


def test_two_campaigns_of_one_company_never_take_more_than_its_lines(bot_a, number_a, dial_tasks):
    bot_a.company.max_lines = 3
    bot_a.company.save()
    first = make_campaign(bot_a, name="First", max_concurrent_calls=3)
    second = make_campaign(bot_a, name="Second", max_concurrent_calls=3)
    add(first, *PHONES[:5])
    add(second, *PHONES[5:])
    start = threading.Barrier(6)

    def racing_dial(campaign):
        start.wait(10)
        return dialer.dial(campaign_id=campaign.pk, now=timezone.now())

    threads = [in_thread(racing_dial, campaign) for campaign in (first, second) * 3]
    for thread, out in threads:
        thread.join(30)
        assert "error" not in out, out.get("error")
    assert Attempt.objects.count() <= 3
    dialer.tick()
    assert Attempt.objects.count() == 3
