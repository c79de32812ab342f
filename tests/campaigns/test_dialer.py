"""The dialler on the real database: room, pace, lines, calling hours, retries, settling from Call rows.

Provider reports come in through ``record_status`` and the runner's stored conversation through
``pipelines.call_store.save_call_record``, as in production; dial tasks are seen at the broker.
"""

from __future__ import annotations

import datetime
from datetime import timedelta

import pytest
from django.utils import timezone

from campaigns import dialer, services
from campaigns.importing import import_csv
from campaigns.models import Attempt, Campaign, Contact
from pipelines.call_store import CallRecord, save_call_record
from tests.campaigns.conftest import PHONES, add, calls_of, make_campaign, midnight_zone
from voicebot.models import Call, PhoneNumber
from voicebot.outbound_calls import DIAL_REQUESTED_KEY, DIAL_TASK, record_status, request_call


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
    campaign.timezone = midnight_zone(timezone.now())  # past midnight there, whatever the hour the suite runs
    campaign.save()
    report = tick()
    assert report.placed == 0 and dial_tasks == []
    assert report.waiting[campaign.pk].startswith("outside calling hours (09:00-18:00 Etc/GMT")
    campaign.timezone = noon
    today = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[timezone.now().astimezone(campaign.tz).weekday()]
    campaign.calling_hours = {day: windows for day, windows in campaign.calling_hours.items() if day != today}
    campaign.save()
    report = tick()
    assert report.placed == 0 and report.waiting[campaign.pk].startswith("no calls on ")
    assert contact(campaign, PHONES[0]).status == "pending"


def test_busy_is_called_again_after_the_delay_until_attempts_run_out(bot_a, number_a, tick, dial_tasks):
    campaign = make_campaign(bot_a, max_attempts=2, retry_busy_minutes=30)
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
    campaign.retry_voicemail_times = 0  # a voicemail reached is then done
    campaign.save()
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
    campaign = make_campaign(bot_a, retry_voicemail_times=1)
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
    assert ended.note == ("rejected: not called again (the campaign calls again only after busy, no answer, "
                          "voicemail, failed)")


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
        call.metrics = {DIAL_REQUESTED_KEY: now.isoformat()}
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
    campaign = make_campaign(bot_a, max_concurrent_calls=1, retry_busy_minutes=1)
    add(campaign, *PHONES[:3])
    now = timezone.now()
    tick(now)
    record_status(call_id=calls_of(campaign)[0].pk, status="busy")
    tick(now + timedelta(minutes=2))
    assert [c.to_number for c in calls_of(campaign)] == [PHONES[0], PHONES[1]]


# --- Contacts' own time zones, per-weekday hours ---------------------------------------------

WEDNESDAY = datetime.datetime(2026, 12, 2, tzinfo=datetime.UTC)  # winter: Berlin UTC+1, New York UTC-5


def test_a_contact_whose_local_time_is_outside_the_window_is_not_called_until_it_opens(bot_a, number_a, tick,
                                                                                        dial_tasks, queued):
    weekdays = {day: [["09:00", "17:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}
    campaign = make_campaign(bot_a, timezone="", calling_hours=weekdays)  # the company's zone: Europe/Berlin
    add(campaign, PHONES[0])  # no zone of its own: the company's
    import_csv(campaign=campaign, data=f"phone,name,timezone\n{PHONES[1]},Bea,America/New_York\n"
                                       f"{PHONES[2]},Cem,Europe/Berlin\n")
    report = tick(WEDNESDAY + timedelta(hours=8))  # 09:00 in Berlin, 03:00 in New York
    assert report.placed == 2
    assert sorted(c.to_number for c in calls_of(campaign)) == [PHONES[0], PHONES[2]]
    assert contact(campaign, PHONES[1]).status == "pending"
    for call in calls_of(campaign):
        answer(call)
    report = tick(WEDNESDAY + timedelta(hours=13))  # 14:00 in Berlin, 08:00 in New York: still closed there
    assert report.placed == 0
    assert report.waiting[campaign.pk] == ("outside calling hours (09:00-17:00 America/New_York; "
                                           "it is 08:00 there)")
    assert services.progress(campaign=campaign, now=WEDNESDAY + timedelta(hours=13))["waiting"].startswith(
        "outside calling hours")
    assert tick(WEDNESDAY + timedelta(hours=14)).placed == 1  # 09:00 in New York
    assert calls_of(campaign)[-1].to_number == PHONES[1]
    assert len(dial_tasks) == 3


# --- Retries per outcome ----------------------------------------------------------------------

def answer(call: Call) -> None:
    """The callee picks up, talks, hangs up; the runner stores the conversation."""
    record_status(call_id=call.pk, status="in-progress")
    record_status(call_id=call.pk, status="completed")
    store_conversation(call, status="completed", end_reason="goodbye")


def test_busy_then_answered_makes_two_attempts_and_one_answered_call(bot_a, number_a, tick, dial_tasks, queued):
    campaign = make_campaign(bot_a, retry_busy_minutes=10)
    add(campaign, PHONES[0])
    now = timezone.now()
    tick(now)
    record_status(call_id=last_call(campaign, PHONES[0]).pk, status="busy")
    tick(now)
    assert contact(campaign, PHONES[0]).next_attempt_at == now + timedelta(minutes=10)
    assert tick(now + timedelta(minutes=9)).placed == 0
    assert tick(now + timedelta(minutes=10)).placed == 1
    answer(last_call(campaign, PHONES[0]))
    tick(now + timedelta(minutes=11))
    reached = contact(campaign, PHONES[0])
    assert (reached.status, reached.attempts_made, reached.last_status) == ("done", 2, "completed")
    assert [a.result for a in reached.attempts.order_by("number")] == ["busy", "completed"]
    calls = calls_of(campaign)
    assert len(calls) == 2 and [c.answered_at is not None for c in calls] == [False, True]


def test_each_outcome_has_its_own_delay_and_limit(bot_a, number_a, tick, dial_tasks, queued):
    campaign = make_campaign(bot_a, max_concurrent_calls=5, max_attempts=5,
                             retry_busy_minutes=10, retry_busy_times=1, retry_no_answer_minutes=60,
                             retry_no_answer_times=0, retry_voicemail_minutes=240, retry_voicemail_times=1,
                             retry_failed_minutes=30, retry_failed_times=2)
    add(campaign, *PHONES[:4])
    busy, no_answer, voicemail, failed = PHONES[:4]
    now = timezone.now()
    tick(now)
    record_status(call_id=last_call(campaign, busy).pk, status="busy")
    record_status(call_id=last_call(campaign, no_answer).pk, status="no-answer")
    record_status(call_id=last_call(campaign, voicemail).pk, status="in-progress")
    store_conversation(last_call(campaign, voicemail), status="voicemail", end_reason="voicemail")
    record_status(call_id=last_call(campaign, failed).pk, status="failed", note="twilio refused the call: HTTP 500")
    tick(now)
    waits = {phone: contact(campaign, phone).next_attempt_at for phone in (busy, voicemail, failed)}
    assert waits == {busy: now + timedelta(minutes=10), voicemail: now + timedelta(minutes=240),
                     failed: now + timedelta(minutes=30)}
    never = contact(campaign, no_answer)
    assert (never.status, never.note) == (
        "failed", "no answer: not called again (the campaign calls again only after busy, voicemail, failed)")
    assert Attempt.objects.get(call=calls_of(campaign)[3]).note == "twilio refused the call: HTTP 500"

    later = now + timedelta(hours=5)  # every retry is due: busy again, voicemail again
    assert tick(later).placed == 3
    record_status(call_id=last_call(campaign, busy).pk, status="busy")
    record_status(call_id=last_call(campaign, voicemail).pk, status="in-progress")
    store_conversation(last_call(campaign, voicemail), status="voicemail", end_reason="voicemail")
    answer(last_call(campaign, failed))
    tick(later)
    ended = {phone: (c.status, c.attempts_made, c.note) for phone in (busy, voicemail, failed)
             for c in [contact(campaign, phone)]}
    assert ended == {busy: ("failed", 2, "busy 2 times; called again at most 1 after busy"),
                     voicemail: ("done", 2, "voicemail 2 times; called again at most 1 after voicemail"),
                     failed: ("done", 2, "")}


def test_max_attempts_bounds_every_outcome_together(bot_a, number_a, tick, dial_tasks):
    campaign = make_campaign(bot_a, max_attempts=2, retry_busy_minutes=0, retry_failed_minutes=0)
    add(campaign, PHONES[0])
    now = timezone.now()
    tick(now)
    record_status(call_id=last_call(campaign, PHONES[0]).pk, status="busy")
    tick(now)  # settled; called again at once (0 minutes)
    record_status(call_id=last_call(campaign, PHONES[0]).pk, status="failed")
    tick(now)
    done = contact(campaign, PHONES[0])
    assert (done.status, done.attempts_made, done.note) == ("failed", 2, "not reached in 2 attempts (last: failed)")


# --- The circuit breaker ----------------------------------------------------------------------

@pytest.fixture
def dial_through(twilio, settings, dial_tasks):
    """Run the queued dial tasks (telephony's, in this process) against the fake Twilio."""
    from telephony.tasks import dial_call

    settings.TWILIO_API_BASE_URL, settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN = twilio.url, "ACx", "y"
    settings.RUNNER_PUBLIC_URL = "https://runner.example.com"

    def run():
        while dial_tasks:
            dial_call(dial_tasks.pop(0)[1])
    return run


def test_the_circuit_breaker_pauses_when_most_calls_fail_and_nothing_more_is_placed(bot_a, number_a, tick,
                                                                                     dial_through, twilio):
    bot_a.company.max_lines = 0
    bot_a.company.save()
    campaign = make_campaign(bot_a, max_concurrent_calls=4, calls_per_minute=600)
    add(campaign, *PHONES)
    failing = set(PHONES[:5])  # the first wave fails entirely, one call of the second
    twilio.refuse = lambda to: to in failing
    now = timezone.now() - timedelta(minutes=5)  # ticks 5 minutes ago; staff resume it now
    assert tick(now).placed == 4
    dial_through()
    assert [c.status for c in calls_of(campaign)] == ["failed"] * 4
    report = tick(now + timedelta(seconds=10))  # 4 failures: under the minimum sample of 5
    assert (report.settled, report.placed) == (4, 4)
    dial_through()
    for call in calls_of(campaign)[5:]:
        record_status(call_id=call.pk, status="busy")  # busy lines are people, not faults
    report = tick(now + timedelta(seconds=20))  # 5 of 8 failed: at least half
    assert (report.settled, report.placed) == (4, 0)
    campaign.refresh_from_db()
    assert campaign.status == "paused"
    assert campaign.status_note == (
        'paused by the circuit breaker: 5 of the last 8 calls failed within 10 minutes (twilio refused the call: '
        'HTTP 401 {"code": 20003, "message": "Authenticate", "status": 401, "more_info": '
        '"https://www.twilio.com/docs/errors/20003"}); fix the cause, then resume it')
    assert report.waiting[campaign.pk] == campaign.status_note
    assert tick(now + timedelta(minutes=1)).placed == 0
    assert len(twilio.requests) == 8

    # Staff fix the credentials and resume: the failures before it do not trip the breaker again.
    twilio.refuse = lambda to: False
    services.resume_campaign(campaign=campaign)
    assert tick(timezone.now() + timedelta(seconds=1)).placed == 2  # the two contacts never called
    dial_through()
    assert len(twilio.requests) == 10


def test_the_circuit_breaker_counts_only_recent_failures_and_can_be_off(bot_a, number_a, tick, dial_tasks):
    bot_a.company.max_lines = 0
    bot_a.company.save()
    campaign = make_campaign(bot_a, max_concurrent_calls=5, calls_per_minute=600, breaker_minutes=10)
    add(campaign, *PHONES)
    now = timezone.now()
    tick(now)
    for call in calls_of(campaign):
        record_status(call_id=call.pk, status="failed", note="runner: no free line")
    tick(now)
    campaign.refresh_from_db()
    assert campaign.status == "paused" and campaign.status_note.startswith(
        "paused by the circuit breaker: 5 of the last 5 calls failed within 10 minutes (runner: no free line)")
    services.resume_campaign(campaign=campaign)
    campaign.breaker_failed_percent = 0  # off
    campaign.save()
    assert dialer.breaker_reason(campaign, timezone.now()) == ""
    campaign.breaker_failed_percent, campaign.resumed_at = 50, None
    assert dialer.breaker_reason(campaign, now + timedelta(minutes=1)).startswith("paused by the circuit breaker")
    assert dialer.breaker_reason(campaign, now + timedelta(minutes=11)) == ""  # ended more than 10 minutes ago


# --- Voicemail message --------------------------------------------------------------------------

def test_the_campaigns_voicemail_message_goes_in_the_calls_variables(bot_a, number_a, tick, dial_tasks):
    from pipelines.config import BotConfig

    bot_a.voicemail_message = "The bot's own message."
    bot_a.save()
    campaign = make_campaign(bot_a, max_concurrent_calls=3, voicemail_message="Hi {{name}}, this is Alpha Dental.")
    add(campaign, PHONES[0], name="Anna")
    import_csv(campaign=campaign, data=f"phone,name,voicemail_message\n{PHONES[1]},Bea,Bea: call us back\n")
    tick()
    first, second = calls_of(campaign)
    assert first.variables == {"name": "Anna", "voicemail_message": "Hi {{name}}, this is Alpha Dental."}
    assert BotConfig.for_outbound_call(first.pk).voicemail_message == "Hi Anna, this is Alpha Dental."
    assert second.variables["voicemail_message"] == "Bea: call us back"  # the contact's own wins
    plain = make_campaign(bot_a, name="Plain")
    add(plain, PHONES[2])
    tick()
    call = calls_of(plain)[0]
    assert "voicemail_message" not in call.variables
    assert BotConfig.for_outbound_call(call.pk).voicemail_message == "The bot's own message."
