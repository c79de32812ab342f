"""The whole chain with real processes: celery beat's tick (migration 0002) -> a worker's dialler ->
request_call -> telephony's dial task -> Twilio's REST API (faked at the HTTP boundary); the
provider's reports then settle the attempts and a busy contact is called again. Then two workers
ticking the same campaign at once: nobody is called twice at a time, no attempt is lost.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import threading
import uuid
from collections import Counter
from importlib import import_module

import pytest
from django.apps import apps
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from campaigns.models import Attempt, Contact
from pipelines.call_store import CallRecord, save_call_record
from tests.campaigns.conftest import PHONES, add, make_campaign
from tests.conftest import database_url_of
from tests.postcall.conftest import kill_worker, start_worker, wait_ready
from tests.waiting import wait_until
from voicebot.celery import app
from voicebot.models import Call
from voicebot.outbound_calls import record_status

TICK_TASK = "campaigns.tasks.tick"


def test_beat_runs_the_registered_tick_every_ten_seconds(db):
    task = PeriodicTask.objects.get(name="campaigns dial tick")  # written by migration 0002
    assert (task.task, task.interval.every, task.interval.period, task.enabled) == (TICK_TASK, 10, "seconds", True)
    app.loader.import_default_modules()
    assert TICK_TASK in app.tasks


def start_beat(queue: str):
    from django.conf import settings
    from django.db import connection

    env = {**os.environ, "DATABASE_URL": database_url_of(connection.settings_dict), "CELERY_TASK_DEFAULT_QUEUE": queue,
           "PYTHONUNBUFFERED": "1"}
    log = open(settings.DATA_DIR / f"beat-{queue}.log", "w")  # noqa: SIM115  (closed when beat stops)
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "voicebot", "beat", "-l", "info",
         "-s", str(settings.DATA_DIR / f"beat-{queue}.schedule")],
        env=env, stdout=log, stderr=subprocess.STDOUT, cwd=settings.BASE_DIR, start_new_session=True)
    proc.log = log
    return proc


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_beat_and_a_worker_call_the_list_and_call_a_busy_contact_again(bot_a, number_a, twilio):
    import_module("campaigns.migrations.0002_dial_tick").create(apps, None)  # a flushed database lost it
    every_two, _ = IntervalSchedule.objects.get_or_create(every=2, period="seconds")
    PeriodicTask.objects.filter(name="campaigns dial tick").update(interval=every_two)  # the test's pace, not 10 s
    campaign = make_campaign(bot_a, retry_busy_minutes=1)
    add(campaign, PHONES[0], PHONES[1], name="Anna")
    queue = f"campaigns-{uuid.uuid4().hex[:6]}"
    worker, node = start_worker(queue, {"TWILIO_API_BASE_URL": twilio.url, "TWILIO_ACCOUNT_SID": "ACtest",
                                        "TWILIO_AUTH_TOKEN": "secret",
                                        "VOICEBOT_RUNNER_PUBLIC_URL": "https://runner.example.com"})
    beat = None
    try:
        wait_ready(worker, node)
        beat = start_beat(queue)
        wait_until(lambda: len(twilio.requests) == 2, 60, what="two calls placed through Twilio")
        assert {r["To"] for r in twilio.requests} == {PHONES[0], PHONES[1]}
        assert all(r["path"] == "/2010-04-01/Accounts/ACtest/Calls.json" and r["From"] == "+4930123456"
                   for r in twilio.requests)
        first = wait_until(lambda: Call.objects.filter(to_number=PHONES[0]).exclude(external_id="").first(), 20,
                           what="the provider's call sid stored")
        second = Call.objects.get(to_number=PHONES[1])
        assert first.variables == {"name": "Anna"}

        # The provider reports: the first line is busy; the second is answered and the runner stores it.
        record_status(call_id=first.pk, external_id=first.external_id, status="busy")
        record_status(call_id=second.pk, status="in-progress")
        record_status(call_id=second.pk, status="completed")
        now = timezone.now()
        save_call_record(CallRecord(company_id=second.company_id, bot_id=second.bot_id, transport="twilio",
                                    started_at=second.started_at, ended_at=now, end_reason="goodbye",
                                    direction="outbound", call_id=second.pk), spool_on_failure=False)
        wait_until(lambda: Contact.objects.get(phone=PHONES[1]).status == "done", 40, what="the answered contact done")
        waiting = wait_until(lambda: Contact.objects.filter(phone=PHONES[0], status="pending").first(), 40,
                             what="the busy contact waiting for its second call")
        assert waiting.last_status == "busy" and waiting.next_attempt_at > now

        Contact.objects.filter(pk=waiting.pk).update(next_attempt_at=timezone.now())  # the retry delay has passed
        wait_until(lambda: len(twilio.requests) == 3, 40, what="the busy contact called again")
        assert twilio.requests[2]["To"] == PHONES[0]
        assert Contact.objects.get(pk=waiting.pk).attempts_made == 2
    finally:
        if beat is not None:
            os.killpg(beat.pid, signal.SIGTERM)
            beat.wait(15)
            beat.log.close()
        kill_worker(worker, signal.SIGTERM)


def store_answered(call: Call) -> None:
    """The callee answered and hung up; the runner stores the conversation into the call's row."""
    record_status(call_id=call.pk, status="in-progress")
    record_status(call_id=call.pk, status="completed")
    save_call_record(CallRecord(company_id=call.company_id, bot_id=call.bot_id, transport="twilio",
                                started_at=call.started_at, ended_at=timezone.now(), end_reason="goodbye",
                                direction="outbound", call_id=call.pk), spool_on_failure=False)


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_two_workers_ticking_one_campaign_at_once_never_call_anyone_twice(bot_a, number_a, twilio):
    bot_a.company.max_lines = 0
    bot_a.company.save()
    campaign = make_campaign(bot_a, max_concurrent_calls=4, calls_per_minute=600, retry_busy_minutes=0,
                             breaker_failed_percent=0)
    add(campaign, *PHONES)
    busy_first = set(PHONES[::2])  # busy on the first call, answered on the second
    queue = f"campaigns-{uuid.uuid4().hex[:6]}"
    env = {"TWILIO_API_BASE_URL": twilio.url, "TWILIO_ACCOUNT_SID": "ACtest", "TWILIO_AUTH_TOKEN": "secret",
           "VOICEBOT_RUNNER_PUBLIC_URL": "https://runner.example.com",
           "VOICEBOT_VERBOSE": "1"}  # Celery's per-task lines, which this test counts, are logged only verbose
    workers = [start_worker(queue, env, log_name=f"celery-{queue}-{n}.log") for n in (1, 2)]
    stop = threading.Event()

    def ticking():  # bursts of ticks, so that both workers run one at the same time
        while not stop.is_set():
            for _ in range(2):
                app.send_task(TICK_TASK, queue=queue)
            stop.wait(0.3)

    most_in_flight = 0

    def callees_answer() -> bool:
        """Each call handed to Twilio ends: busy or answered; True once every contact is done."""
        nonlocal most_in_flight
        most_in_flight = max(most_in_flight, Attempt.objects.filter(campaign=campaign, settled_at__isnull=True)
                             .count())
        for call in (Call.objects.filter(campaign_attempt__campaign=campaign, status="queued").exclude(external_id="")
                     .select_related("campaign_attempt")):
            if call.to_number in busy_first and call.campaign_attempt.number == 1:
                record_status(call_id=call.pk, status="busy")
            else:
                store_answered(call)
        return not campaign.contacts.exclude(status="done").exists()

    ticker = threading.Thread(target=ticking, daemon=True)
    try:
        for worker, node in workers:
            wait_ready(worker, node)
        ticker.start()
        wait_until(callees_answer, 60, interval=0.2, what="every contact reached")
    finally:
        stop.set()
        for worker, _ in workers:
            kill_worker(worker, signal.SIGTERM)
    attempts = list(Attempt.objects.filter(campaign=campaign).select_related("contact", "call")
                    .order_by("contact_id", "number"))
    per_contact = Counter(a.contact.phone for a in attempts)
    assert per_contact == {phone: 2 if phone in busy_first else 1 for phone in PHONES}  # none lost, none doubled
    for earlier, later in itertools.pairwise(attempts):
        if earlier.contact_id == later.contact_id:  # never two calls to one contact at a time
            assert later.placed_at >= earlier.settled_at, (earlier.contact.phone, earlier.number)
    assert all(a.call.external_id for a in attempts)  # every attempt was dialled...
    assert Counter(r["To"] for r in twilio.requests) == per_contact  # ...once, through the provider
    assert Call.objects.filter(company=bot_a.company).count() == len(attempts)
    assert most_in_flight <= 4
    ticks_run, failed = [], []
    for worker, _ in workers:
        with open(worker.log.name) as log:
            lines = log.readlines()
        ticks_run.append(sum(TICK_TASK in line and "succeeded" in line for line in lines))
        failed += [line for line in lines if "raised unexpected" in line]
    assert all(ticks_run), f"both workers ran ticks: {ticks_run}"
    # Not one tick failed: without the claims' locks, the racing ticks both number an attempt (the
    # unique attempt number rolls one back, its calls never placed) and this fails.
    assert failed == []
