"""Fixtures of the post-call tests: a Celery worker with short webhook retries, receivers, call data."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from postcall.models import Event, WebhookEndpoint
from tests import waiting
from tests.conftest import database_url_of
from tests.postcall.receiver import Receiver
from voicebot.models import Call, CallTurn

# Short retries so that a test sees several attempts in seconds (production: 10 s, x3, ... for 26 h).
FAST_RETRIES = {
    "POSTCALL_WEBHOOK_RETRY_FIRST_SEC": "0.5",
    "POSTCALL_WEBHOOK_RETRY_FACTOR": "2",
    "POSTCALL_WEBHOOK_RETRY_MAX_SEC": "2",
    "POSTCALL_WEBHOOK_RETRY_FOR_SEC": "20",
    "POSTCALL_WEBHOOK_ALLOW_PRIVATE": "true",
    "VOICEBOT_OUTBOUND_ALLOW_PRIVATE": "true",  # the receivers are on 127.0.0.1
    "POSTCALL_WEBHOOK_TIMEOUT_SEC": "5",
}
DEAD_LLM = "http://127.0.0.1:9/v1"  # nothing listens: the fallback summary is used
KILL_TEST_BROKER = "redis://127.0.0.1:6379/11"


def llama_available() -> bool:
    from voicebot import llm_endpoint

    return llm_endpoint.embedded_server_available()


def start_worker(queue: str, extra_env: dict, app: str = "voicebot", log_name: str | None = None):
    from django.conf import settings
    from django.db import connection

    env = {**os.environ, "DATABASE_URL": database_url_of(connection.settings_dict),
           "CELERY_TASK_DEFAULT_QUEUE": queue, "PYTHONUNBUFFERED": "1", **FAST_RETRIES, **extra_env}
    log = open(settings.DATA_DIR / (log_name or f"celery-{queue}.log"), "a")
    name = f"{queue}-{uuid.uuid4().hex[:4]}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", app, "worker", "-Q", queue, "--concurrency", "1", "-l", "info",
         "--without-gossip", "--without-mingle", "--without-heartbeat", "-n", f"{name}@%h"],
        env=env, stdout=log, stderr=subprocess.STDOUT, cwd=settings.BASE_DIR, start_new_session=True)
    proc.log = log
    return proc, f"{name}@{os.uname().nodename}"


def wait_ready(proc, node: str, timeout: float = 60) -> None:
    """Until the worker's log says it is ready (works on any broker database, unlike a ping)."""
    deadline = time.monotonic() + timeout
    short = node.split("@")[0]
    while True:
        with open(proc.log.name) as log:
            if any(short in line and line.rstrip().endswith("ready.") for line in log):
                return
        if proc.poll() is not None or time.monotonic() > deadline:
            kill_worker(proc)
            raise RuntimeError(f"celery worker did not start; see {proc.log.name}")
        time.sleep(0.2)


def kill_worker(proc, sig=signal.SIGKILL) -> None:
    """The whole worker (main process and its pool children), like a machine losing power."""
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)
    proc.log.close()


@pytest.fixture(scope="session")
def postcall_llm_url(request):
    """The bundled LLM when llama-server is built (started before any worker), else a dead URL."""
    if llama_available():
        return request.getfixturevalue("llm_server")
    return DEAD_LLM


@pytest.fixture(scope="session")
def postcall_worker_session(postcall_llm_url, django_db_setup, django_db_blocker):
    queue = f"postcall-{uuid.uuid4().hex[:6]}"
    proc, node = start_worker(queue, {"VOICEBOT_LLM_BASE_URL": postcall_llm_url})
    wait_ready(proc, node)
    yield {"queue": queue, "process": proc, "llm_url": postcall_llm_url}
    kill_worker(proc, signal.SIGTERM)


@pytest.fixture
def postcall_worker(postcall_worker_session):
    """The worker, with this process's .delay() pointed at its queue for the test."""
    from voicebot.celery import app

    previous = app.conf.task_default_queue
    app.conf.task_default_queue = postcall_worker_session["queue"]
    yield postcall_worker_session
    app.conf.task_default_queue = previous


@pytest.fixture
def receiver():
    started = []

    def make(script=None, default="ok", port=0):
        started.append(Receiver(script, default, port).start())
        return started[-1]

    yield make
    for item in started:
        item.release.set()
        item.stop()


@pytest.fixture
def private_webhooks(settings):
    """The receivers are on 127.0.0.1: allow private targets (voicebot.outbound) for the test."""
    settings.POSTCALL_WEBHOOK_ALLOW_PRIVATE = True
    settings.OUTBOUND_ALLOW_PRIVATE = True


def make_endpoint(company, url, events=None, secret="whsec_test_secret"):
    return WebhookEndpoint.objects.create(company=company, url=url, secret=secret,
                                          events=events or [Event.CALL_ENDED, Event.LEAD_CAPTURED,
                                                            Event.BOOKING_CREATED])


BOOKING_SCENARIOS = [
    {"name": "booking", "trigger_keywords": ["book", "appointment"], "use_knowledge_base": False,
     "on_complete": "booking_created",
     "collect_fields": [
         {"name": "service", "prompt": "Which service?", "type": "text", "required": True},
         {"name": "date", "prompt": "Which day?", "type": "date", "required": True},
         {"name": "phone", "prompt": "Your phone number?", "type": "phone", "required": True},
     ]},
]

BOOKING_TURNS = [
    ("bot", "Alpha Dental, how can I help?", None, False),
    ("caller", "Hi, my name is Maria Lopez. How much does a cleaning cost? I'd like to book an appointment.", None,
     False),
    ("bot", "Which service would you like?", 900, False),
    ("caller", "A cleaning please.", None, False),
    ("bot", "Which day?", 1100, True),
    ("caller", "Next Tuesday.", None, False),
    ("bot", "Your phone number for the confirmation?", 1300, False),
    ("caller", "It's 0151 2345 6789.", None, False),
    ("bot", "Thank you, you're booked for a cleaning next Tuesday.", 2000, False),
]


def store_call(bot, turns=BOOKING_TURNS, collected=None, scenario="booking", on_commit=None, **fields):
    """Store a call the way the live-call code does: one transaction, then ``on_commit``."""
    started = timezone.now() - timedelta(minutes=3)
    with transaction.atomic():
        call = Call.objects.create(
            company=bot.company, bot=bot, transport=fields.pop("transport", Call.Transport.TWILIO),
            from_number=fields.pop("from_number", "+4930999888"), to_number="+4930123456",
            started_at=fields.pop("started_at", started),
            ended_at=fields.pop("ended_at", started + timedelta(seconds=95)), end_reason=Call.EndReason.GOODBYE,
            scenario=scenario, collected_fields=collected if collected is not None else {
                "service": "cleaning", "date": "next tuesday", "phone": "+4915123456789"}, **fields)
        clock = 0
        for index, (role, text, latency, interrupted) in enumerate(turns):
            CallTurn.objects.create(call=call, index=index, role=role, text=text, start_ms=clock,
                                    end_ms=clock + 2000, latency_ms=latency, interrupted=interrupted)
            clock += 2500
        if on_commit:
            transaction.on_commit(lambda: on_commit(call.pk))
    return call


def wait_until(predicate, timeout: float = 60, interval: float = 0.2):
    return waiting.wait_until(predicate, timeout, interval)
