"""Shared fixtures: two companies with their own staff, bots and numbers.

Tests run against the real embedded PostgreSQL with pgvector (or DATABASE_URL).
"""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from voicebot.apps import STAFF_GROUP, ensure_staff_group
from voicebot.models import Bot, Company, PhoneNumber


def make_staff(username: str, *companies: Company):
    user = get_user_model().objects.create_user(username=username, password="pw-" + username, is_staff=True)
    ensure_staff_group(sender=None)  # transactional tests flush the group away
    user.groups.add(Group.objects.get(name=STAFF_GROUP))
    for company in companies:
        company.staff.add(user)
    return user


@pytest.fixture
def company_a(db):
    return Company.objects.create(name="Alpha Dental", slug="alpha", timezone="Europe/Berlin", country="DE")


@pytest.fixture
def company_b(db):
    return Company.objects.create(name="Beta Salon", slug="beta", timezone="America/New_York", country="US")


@pytest.fixture
def bot_a(company_a):
    return Bot.objects.create(company=company_a, name="Alpha front desk", slug="alpha-desk", greeting="Alpha here.")


@pytest.fixture
def bot_b(company_b):
    return Bot.objects.create(company=company_b, name="Beta front desk", slug="beta-desk", greeting="Beta here.")


@pytest.fixture
def number_a(bot_a):
    return PhoneNumber.objects.create(company=bot_a.company, bot=bot_a, number="+4930123456")


@pytest.fixture
def number_b(bot_b):
    return PhoneNumber.objects.create(company=bot_b.company, bot=bot_b, number="+12125550100")


@pytest.fixture
def staff_a(company_a):
    return make_staff("anna", company_a)


@pytest.fixture
def staff_b(company_b):
    return make_staff("bert", company_b)


@pytest.fixture
def client_a(client, staff_a):
    client.force_login(staff_a)
    return client


@pytest.fixture
def spool_dir(tmp_path, settings):
    """Calls that cannot be stored go to a spool folder of the test's own."""
    settings.SPOOL_DIR = tmp_path / "spool"
    return settings.SPOOL_DIR


@pytest.fixture
def queued(monkeypatch):
    """Post-call tasks queued, recorded at the broker boundary."""
    from pipelines import call_store

    sent = []
    monkeypatch.setattr(call_store.celery_app, "send_task", lambda name, args, **kw: sent.append((name, args)))
    return sent


# --- A real Celery worker -------------------------------------------------------

def database_url_of(settings_dict) -> str:
    """A libpq URL for the (test) database this process uses, for child processes."""
    host = settings_dict["HOST"] or settings_dict.get("OPTIONS", {}).get("host", "")
    if host.startswith("/"):
        return f"postgres://{settings_dict['USER']}@/{settings_dict['NAME']}?host={host}"
    port = f":{settings_dict['PORT']}" if settings_dict["PORT"] else ""
    password = f":{settings_dict['PASSWORD']}" if settings_dict["PASSWORD"] else ""
    return f"postgres://{settings_dict['USER']}{password}@{host}{port}/{settings_dict['NAME']}"


@pytest.fixture(scope="session")
def celery_worker_process(django_db_setup, django_db_blocker):
    """A real `celery worker` on Redis, on the test database, with a queue of its own.

    Tests that use it must be ``@pytest.mark.django_db(transaction=True)`` so
    that the rows they create are committed and visible to the worker.
    """
    import os
    import subprocess
    import sys
    import time
    import uuid

    from django.conf import settings
    from django.db import connection

    from voicebot.celery import app

    queue = f"test-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "DATABASE_URL": database_url_of(connection.settings_dict),
        "CELERY_TASK_DEFAULT_QUEUE": queue,
        "PYTHONUNBUFFERED": "1",
    }
    log = open(settings.DATA_DIR / f"celery-{queue}.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "voicebot", "worker", "-Q", queue, "--concurrency", "1",
         "-l", "info", "--without-gossip", "--without-mingle", "-n", f"{queue}@%h"],
        env=env, stdout=log, stderr=subprocess.STDOUT, cwd=settings.BASE_DIR,
    )
    previous_queue = app.conf.task_default_queue
    app.conf.task_default_queue = queue
    deadline = time.monotonic() + 60
    while not app.control.ping(destination=[f"{queue}@{os.uname().nodename}"], timeout=0.5):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"celery worker did not start; see {log.name}")
    yield {"process": proc, "queue": queue, "log": log.name, "env": env}
    app.conf.task_default_queue = previous_queue
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


# --- The web app, served -------------------------------------------------------------

@pytest.fixture(scope="session")
def live_api(django_db_setup):
    """The web app served by gunicorn on the test database (tests/api/live_app.py); its base URL.

    Tests that use it need ``django_db(transaction=True)``: gunicorn reads committed rows.
    """
    from tests.api.live_app import served_app

    with served_app(log_name="gunicorn-api.log") as base:
        yield base


# --- The bundled LLM server (llama.cpp, OpenAI-compatible /v1) ---------------------

@pytest.fixture(scope="session")
def llm_server():
    """The bundled SmolLM2 served by llama.cpp on a free loopback port, for the whole session.

    Yields its /v1 base URL; ``voicebot.llm_endpoint.base_url()`` points at it
    (and child processes get it through VOICEBOT_LLM_BASE_URL).
    """
    from django.conf import settings

    from voicebot import llm_endpoint

    with open(settings.DATA_DIR / "llm-tests.log", "w") as log, llm_endpoint.embedded_server_pinned(log=log) as url:
        yield url


def make_desk_bot(company, **overrides):
    """The dental desk bot the live-call tests call (tests/calls, tests/telephony)."""
    from voicebot.models import Bot

    return Bot.objects.create(**{
        "company": company, "name": "Alpha dental desk", "slug": "alpha-dental",
        "greeting": "Hello, Alpha Dental, how can I help?",
        "system_prompt": "You are the receptionist of Alpha Dental. Open 8am to 6pm, Monday to Friday.",
        "fallback_phrase": "Sorry, I am having trouble right now. Please say that again.",
        "transfer_number": "+4930999999", "silence_timeout_sec": 4.0, "max_turns": 5, **overrides})
