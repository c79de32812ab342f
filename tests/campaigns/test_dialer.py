"""The dialler on the real database: room, pace, lines, calling hours, retries, settling from Call rows.

Provider reports come in through ``record_status`` and the runner's stored conversation through
``pipelines.call_store.save_call_record``, as in production; dial tasks are seen at the broker.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from campaigns import dialer, services
from campaigns.models import Attempt, Campaign, Contact
from pipelines.call_store import CallRecord, save_call_record
from tests.campaigns.conftest import PHONES, add, calls_of, make_campaign
from voicebot.models import Call, PhoneNumber
from voicebot.outbound_calls import DIAL_TASK, record_status, request_call


@pytest.fixture
def tick(django_capture_on_commit_callbacks):
    """One beat tick at ``now`` (default: the real now), its on-commit work (dial tasks) run."""
    def run(now=None):
        with django_capture_on_commit_callbacks(execute=True):
            return dialer.tick(now=now)
    return run


def contact(campaign, phone) -> Contact:
    return campaign.contacts.get(phone=phone)


def last_call(campaign, phone) -> Call:
    return contact(campaign, phone).attempts.order_by("-number").first().call


def store_conversation(call: Call, *, status: str, end_reason: str) -> None:
    """What the runner writes into a placed outbound call's row at hang-up."""
    now = timezone.now()
    save_call_record(CallRecord(company_id=call.company_id, bot_id=call.bot_id, transport=call.transport,
                                started_at=call.started_at, ended_at=now, end_reason=end_reason, status=status,
                                direction=Call.Direction.OUTBOUND, call_id=call.pk), spool_on_failure=False)


def test_places_calls_up_to_its_concurrency_and_dials_after_the_claim_commits(campaign, tick, dial_tasks, queued):
    add(campaign, *PHONES[:5], name="Anna", appointment="Tuesday 10:00")
    report = tick()
    assert report.placed == 2
    calls = calls_of(campaign)
    assert [(c.to_number, c.from_number, c.status, c.direction) for c in calls] == [
        (PHONES[0], "+4930123456", "queued", "outbound"), (PHONES[1], "+4930123456", "queued", "outbound")]
    assert calls[0].variables == {"name": "Anna", "appointment": "Tuesday 10:00"}
    assert dial_tasks == [(DIAL_TASK, calls[0].pk), (DIAL_TASK, calls[1].pk)]
    first = contact(campaign, PHONES[0])
    assert (first.status, first.attempts_made) == ("calling", 1)
    assert first.attempts.get().call == calls[0]

    assert tick().placed == 0  # both lines of the campaign are in use
    record_status(call_id=calls[0].pk, status="busy")
    report = tick()
    assert (report.settled, report.placed) == (1, 1)  # the freed line goes to the next contact
    assert calls_of(campaign)[-1].to_number == PHONES[2]


def test_calls_per_minute_paces_new_calls(bot_a, number_a, tick, dial_tasks):
    bot_a.company.max_lines = 0  # no company limit: only the campaign's pace
    bot_a.company.save()
    campaign = make_campaign(bot_a, max_concurrent_calls=10, calls_per_minute=3)
    add(campaign, *PHONES[:8])
    now = timezone.now()
    assert tick(now).placed == 3
    assert tick(now + timedelta(seconds=30)).placed == 0
    assert tick(now + timedelta(seconds=61)).placed == 3
    assert len(dial_tasks) == 6


def test_the_companys_lines_bound_every_campaign_and_single_call_together(bot_a, number_a, tick, dial_tasks):
    bot_a.company.max_lines = 3
    bot_a.company.save()
    request_call(bot=bot_a, to="+49301234599")  # a single outbound call holds one line
    first = make_campaign(bot_a, name="First")
    second = make_campaign(bot_a, name="Second")
    add(first, *PHONES[:3])
    add(second, *PHONES[3:6])
    assert tick().placed == 2
    assert Call.objects.filter(status="queued").count() == 3
    record_status(call_id=calls_of(first)[0].pk, status="no-answer")
    assert tick().placed == 1


def test_nothing_is_placed_outside_calling_hours_or_days(campaign, tick, dial_tasks):
    add(campaign, PHONES[0])
    noon = campaign.timezone
    campaign.timezone = "Etc/GMT-12" if noon != "Etc/GMT-12" else "Etc/GMT+11"  # 11-12 hours from noon: closed
    campaign.save()
    report = tick()
    assert report.placed == 0 and dial_tasks == []
    assert report.waiting[campaign.pk].startswith("outside calling hours (09:00-18:00 Etc/GMT")
    campaign.timezone = noon
    today = timezone.now().astimezone(campaign.tz).weekday()
    campaign.call_days = [day for day in range(7) if day != today]
    campaign.save()
    report = tick()
    assert report.placed == 0 and report.waiting[campaign.pk].startswith("no calls on ")
    assert contact(campaign, PHONES[0]).status == "pending"


def test_busy_is_called_again_after_the_delay_until_attempts_run_out(bot_a, number_a, tick, dial_tasks):
    campaign = make_campaign(bot_a, max_attempts=2, retry_delay_minutes=30)
    add(campaign, PHONES[0])
    now = timezone.now()
    tick(now)
    record_status(call_id=last_call(campaign, PHONES[0]).pk, status="busy")
    tick(now)
    waiting = contact(campaign, PHONES[0])
    assert (waiting.status, waiting.last_status, waiting.next_attempt_at) == ("pending", "busy", now + timedelta(minutes=30))
    assert tick(now + timedelta(minutes=29)).placed == 0
    assert tick(now + timedelta(minutes=30)).placed == 1
    second = last_call(campaign, PHONES[0])
    assert second.to_number == PHONES[0] and contact(campaign, PHONES[0]).attempts_made == 2

    record_status(call_id=second.pk, status="no-answer")
    tick(now + timedelta(minutes=31))
    done = contact(campaign, PHONES[0])
    assert (done.status, done.note) == ("failed", "not reached in 2 attempts (last: no answer)")
    assert [a.result for a in done.attempts.order_by("number")] == ["busy", "no-answer"]
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.COMPLETED and campaign.finished_at is not None


def test_an_answered_call_is_settled_from_its_stored_conversation(campaign, tick, dial_tasks, queued):
    add(campaign, PHONES[0], PHONES[1])
    tick()
    first, second = calls_of(campaign)
    for call in (first, second):
        record_status(call_id=call.pk, status="in-progress")
        record_status(call_id=call.pk, status="completed")  # the provider hangs up before the runner stores
    assert tick().settled == 0  # the runner may still say voicemail
    assert contact(campaign, PHONES[0]).status == "calling"

    store_conversation(first, status="voicemail", end_reason="voicemail")
    store_conversation(second, status="completed", end_reason="goodbye")
    assert tick().settled == 2
    assert (contact(campaign, PHONES[0]).status, contact(campaign, PHONES[0]).last_status) == ("done", "voicemail")
    assert (contact(campaign, PHONES[1]).status, contact(campaign, PHONES[1]).last_status) == ("done", "completed")


def test_voicemail_is_called_again_where_the_campaign_says_so(bot_a, number_a, tick, dial_tasks, queued):
    campaign = make_campaign(bot_a, retry_on=["voicemail", "busy"])
    add(campaign, PHONES[0])
    tick()
    call = calls_of(campaign)[0]
    record_status(call_id=call.pk, status="in-progress")
    store_conversation(call, status="voicemail", end_reason="voicemail")
    tick()
    assert contact(campaign, PHONES[0]).status == "pending"


def test_a_completed_call_whose_conversation_never_comes_is_settled_after_the_grace(campaign, tick, dial_tasks,
                                                                                        settings):
    add(campaign, PHONES[0])
    tick()
    call = calls_of(campaign)[0]
    record_status(call_id=call.pk, status="completed")
    now = timezone.now()
    assert tick(now + timedelta(seconds=settings.CAMPAIGNS_STORE_GRACE_SEC - 5)).settled == 0
    assert tick(now + timedelta(seconds=settings.CAMPAIGNS_STORE_GRACE_SEC + 1)).settled == 1
    assert contact(campaign, PHONES[0]).status == "done"
    assert Attempt.objects.get(call=call).note.startswith("no conversation was stored")


def test_a_status_the_campaign_does_not_retry_ends_the_contact(campaign, tick, dial_tasks):
    add(campaign, PHONES[0])
    tick()
    record_status(call_id=calls_of(campaign)[0].pk, status="rejected")
    tick()
    ended = contact(campaign, PHONES[0])
    assert ended.status == "failed"
    assert ended.note == "rejected: not called again (the campaign retries only after busy, no-answer, failed)"


def test_a_call_never_dialled_is_canceled_and_called_again(campaign, tick, dial_tasks, settings):
    add(campaign, PHONES[0])
    now = timezone.now()
    tick(now)
    later = now + timedelta(seconds=settings.CAMPAIGNS_DIAL_TIMEOUT_SEC)
    report = tick(later)
    assert report.settled == 1 and report.placed == 1  # canceled, then called again at once
    first, second = calls_of(campaign)
    assert first.status == "canceled" and first.end_reason == "not_answered"
    assert "campaigns: never dialled within 600 s" in first.metrics["notes"][0]
    record_status(call_id=first.pk, status="ringing")  # a late dial task's report changes nothing
    first.refresh_from_db()
    assert first.status == "canceled"
    assert contact(campaign, PHONES[0]).attempts_made == 2 and second.status == "queued"


@pytest.mark.parametrize("last_heard", ["ringing", "handed over"])
def test_a_call_with_no_final_status_is_not_called_again(campaign, tick, dial_tasks, settings, last_heard):
    add(campaign, PHONES[0])
    now = timezone.now()
    tick(now)
    call = calls_of(campaign)[0]
    if last_heard == "ringing":
        record_status(call_id=call.pk, status="ringing")
    else:  # what telephony.tasks.dial_call leaves when the provider took the call and then said nothing
        call.metrics = {"dial_requested_at": now.isoformat()}
        call.save(update_fields=["metrics"])
    assert tick(now + timedelta(seconds=settings.CAMPAIGNS_DIAL_TIMEOUT_SEC - 1)).settled == 0
    report = tick(now + timedelta(seconds=settings.CAMPAIGNS_DIAL_TIMEOUT_SEC))
    assert (report.settled, report.placed) == (1, 0)
    ended = contact(campaign, PHONES[0])
    assert (ended.status, ended.last_status) == ("failed", Attempt.UNKNOWN)
    assert ended.note.startswith("still ringing after 600 s" if last_heard == "ringing" else
                                 "handed to the provider, no status after 600 s")
    assert ended.note.endswith("not called again, so as never to call twice")
    assert Call.objects.get(pk=call.pk).status == ("ringing" if last_heard == "ringing" else "queued")


def test_a_bad_number_fails_its_contact_and_the_others_are_called(campaign, tick, dial_tasks):
    add(campaign, "+4912", PHONES[0])  # stored without the import's check
    assert tick().placed == 1
    bad = contact(campaign, "+4912")
    assert bad.status == "failed" and "'+4912' is not a valid phone number" in bad.note
    assert calls_of(campaign)[0].to_number == PHONES[0]


def test_a_missing_caller_id_pauses_the_campaign_with_the_reason(campaign, tick, dial_tasks):
    add(campaign, PHONES[0])
    PhoneNumber.objects.update(active=False)
    assert tick().placed == 0
    campaign.refresh_from_db()
    assert campaign.status == "paused"
    assert campaign.status_note == ("paused by the dialler: bot 'alpha-desk' has no active Twilio, Telnyx, Plivo or "
                                    "SIP number to call from; add one or name one in 'from'")
    assert contact(campaign, PHONES[0]).status == "pending" and dial_tasks == []


def test_the_end_of_a_campaign_skips_contacts_not_reached(campaign, tick, dial_tasks):
    add(campaign, *PHONES[:3])
    now = timezone.now()
    tick(now)
    campaign.ends_at = now + timedelta(minutes=5)
    campaign.save()
    record_status(call_id=calls_of(campaign)[0].pk, status="busy")
    tick(now + timedelta(minutes=5))
    statuses = dict(campaign.contacts.values_list("phone", "status"))
    assert statuses == {PHONES[0]: "skipped", PHONES[1]: "calling", PHONES[2]: "skipped"}
    assert contact(campaign, PHONES[2]).note == "the campaign ended before this contact was reached"
    campaign.refresh_from_db()
    assert campaign.status == "completed"
    record_status(call_id=calls_of(campaign)[1].pk, status="completed")
    store_conversation(calls_of(campaign)[1], status="completed", end_reason="goodbye")
    tick(now + timedelta(minutes=6))
    assert contact(campaign, PHONES[1]).status == "done"  # the call in progress still counts


def test_cancel_skips_waiting_contacts_and_retries_nobody(campaign, tick, dial_tasks):
    add(campaign, *PHONES[:3])
    tick()
    services.cancel_campaign(campaign=campaign)
    record_status(call_id=calls_of(campaign)[0].pk, status="busy")
    assert tick().placed == 0
    statuses = dict(campaign.contacts.values_list("phone", "status"))
    assert statuses == {PHONES[0]: "skipped", PHONES[1]: "calling", PHONES[2]: "skipped"}
    assert contact(campaign, PHONES[0]).note == "the campaign was canceled (busy)"


def test_pause_stops_new_calls_and_resume_goes_on(campaign, tick, dial_tasks):
    add(campaign, *PHONES[:3])
    campaign.max_concurrent_calls = 1
    campaign.save()
    tick()
    services.pause_campaign(campaign=campaign)
    record_status(call_id=calls_of(campaign)[0].pk, status="failed")
    report = tick()
    assert (report.settled, report.placed) == (1, 0)
    assert contact(campaign, PHONES[0]).status == "pending"  # settled while paused: called again later
    services.start_campaign(campaign=campaign)
    assert tick().placed == 1


def test_a_contact_skipped_during_its_call_stays_skipped(campaign, tick, dial_tasks):
    add(campaign, PHONES[0])
    tick()
    services.skip_contact(contact=contact(campaign, PHONES[0]), note="asked not to be called")
    record_status(call_id=calls_of(campaign)[0].pk, status="busy")
    tick()
    skipped = contact(campaign, PHONES[0])
    assert (skipped.status, skipped.note, skipped.last_status) == ("skipped", "asked not to be called", "busy")


def test_fresh_contacts_go_before_due_retries_and_in_list_order(bot_a, number_a, tick, dial_tasks):
    campaign = make_campaign(bot_a, max_concurrent_calls=1, retry_delay_minutes=1)
    add(campaign, *PHONES[:3])
    now = timezone.now()
    tick(now)
    record_status(call_id=calls_of(campaign)[0].pk, status="busy")
    tick(now + timedelta(minutes=2))
    assert [c.to_number for c in calls_of(campaign)] == [PHONES[0], PHONES[1]]
