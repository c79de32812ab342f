"""The whole chain with real processes: celery beat's tick (migration 0002) -> a worker's dialler ->
request_call -> telephony's dial task -> Twilio's REST API (faked at the HTTP boundary); the
provider's reports then settle the attempts and a busy contact is called again.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import import_module
from urllib.parse import parse_qs

import pytest
from django.apps import apps
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from campaigns.models import Contact
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


class FakeTwilioCalls:
    """Twilio's Calls.json: records each call request and answers with a new call sid."""

    def __init__(self):
        self.requests: list[dict] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0))).decode()
                fake.requests.append({"path": self.path, **{k: v[0] for k, v in parse_qs(body).items()}})
                data = json.dumps({"sid": f"CA{uuid.uuid4().hex}", "status": "queued"}).encode()
                self.send_response(201)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


@pytest.fixture
def twilio():
    fake = FakeTwilioCalls()
    yield fake
    fake.close()


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
    campaign = make_campaign(bot_a, retry_delay_minutes=1)
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
