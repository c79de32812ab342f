"""`manage.py chat --bot SLUG` driven through a pipe, as a real process on the test database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import connection

from pipelines.dialogue.normalize import today_in
from tests.conftest import database_url_of
from voicebot.models import Call


@pytest.mark.models
@pytest.mark.django_db(transaction=True)
def test_the_terminal_chat_books_through_a_pipe_and_stores_the_chat(demo_bot, receiver):
    lines = ["I'd like to book an appointment", "a haircut", "tomorrow", "ten in the morning",
             "555", "212 555 0123", "yes", "goodbye"]
    env = {**os.environ, "DATABASE_URL": database_url_of(connection.settings_dict), "HF_HUB_OFFLINE": "1",
           "DO_NOT_TRACK": "true", "VOICEBOT_LLM_BASE_URL": "http://127.0.0.1:9/v1",
           "VOICEBOT_OUTBOUND_ALLOW_PRIVATE": "true"}  # the receiver is on 127.0.0.1
    result = subprocess.run(
        [sys.executable, "manage.py", "chat", "--bot", demo_bot.slug, "--json"],
        input="\n".join(lines) + "\n", capture_output=True, text=True, env=env, cwd=settings.BASE_DIR, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    replies = [json.loads(line) for line in result.stdout.splitlines()]
    assert replies[0]["reply"] == "Hello! Elegant beauty salon. How can I help?"
    assert [r["state"]["field"] for r in replies[1:5]] == ["service", "date", "time", "phone"]
    assert replies[5]["state"]["field"] == "phone"  # "555" is re-asked
    assert replies[6]["state"]["awaiting"] == "confirm"
    assert replies[7]["reply"] == "You're booked. See you soon!"
    assert replies[8]["reply"] == "Thank you for calling. Goodbye!"
    assert "stored as call" in result.stderr

    tomorrow = (today_in("America/New_York") + timedelta(days=1)).isoformat()
    fields = {"service": "haircut", "date": tomorrow, "time": "10:00", "phone": "+12125550123"}
    assert json.loads(receiver.requests[0]["body"])["fields"] == fields
    call = Call.objects.get(bot=demo_bot)
    assert call.transport == "chat" and call.end_reason == "goodbye"
    assert call.collected_fields == fields and call.scenario == "booking"
    assert call.turns.count() == 1 + 2 * len(lines)


@pytest.mark.django_db(transaction=True)
def test_an_unknown_bot_is_a_clear_error(demo_bot):
    env = {**os.environ, "DATABASE_URL": database_url_of(connection.settings_dict)}
    result = subprocess.run([sys.executable, "manage.py", "chat", "--bot", "no-such-bot"], input="", env=env,
                            capture_output=True, text=True, cwd=settings.BASE_DIR, timeout=60)
    assert result.returncode != 0
    assert "no active bot with slug 'no-such-bot'" in result.stderr
