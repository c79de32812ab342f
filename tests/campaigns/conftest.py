"""Fixtures of the campaign tests: a campaign of bot_a in calling hours, dial tasks seen at the broker."""

from __future__ import annotations

import datetime
import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest
from django.utils import timezone

from campaigns.models import Campaign
from voicebot.models import Call


def noon_zone(now: datetime.datetime) -> str:
    """A fixed-offset time zone where ``now`` is between 12:00 and 13:00 (inside 9-18 calling hours)."""
    hours = 12 - now.astimezone(datetime.UTC).hour  # -11 .. 12
    if hours == 0:
        return "Etc/GMT"
    return f"Etc/GMT{'-' if hours > 0 else '+'}{abs(hours)}"  # POSIX sign: Etc/GMT-2 is UTC+2


def midnight_zone(now: datetime.datetime) -> str:
    """A fixed-offset time zone where ``now`` is between 00:00 and 01:00 (outside any daytime calling hours)."""
    hours = -now.astimezone(datetime.UTC).hour  # -23 .. 0
    if hours < -12:
        hours += 24  # Etc zones run from UTC-12 to UTC+14
    if hours == 0:
        return "Etc/GMT"
    return f"Etc/GMT{'-' if hours > 0 else '+'}{abs(hours)}"


class FakeTwilioCalls:
    """Twilio's Calls.json: records each call request and answers with a new call sid, or, for a
    number ``refuse`` picks, with Twilio's 401 error body (bad credentials)."""

    def __init__(self):
        self.requests: list[dict] = []
        self.refuse = lambda to: False
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0))).decode()
                form = {k: v[0] for k, v in parse_qs(body).items()}
                fake.requests.append({"path": self.path, **form})
                if fake.refuse(form.get("To", "")):
                    code, answer = 401, {"code": 20003, "message": "Authenticate", "status": 401,
                                         "more_info": "https://www.twilio.com/docs/errors/20003"}
                else:
                    code, answer = 201, {"sid": f"CA{uuid.uuid4().hex}", "status": "queued"}
                data = json.dumps(answer).encode()
                self.send_response(code)
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


@pytest.fixture
def dial_tasks(queued, monkeypatch):
    """Dial tasks queued by request_call, recorded at the broker boundary: [(task name, call id)].

    Other tasks (post-call, queued when the runner stores a call) go to ``queued``'s record."""
    from voicebot import outbound_calls

    sent = []
    original = outbound_calls.celery_app.send_task

    def send_task(name, args=None, **kwargs):
        if name == outbound_calls.DIAL_TASK:
            sent.append((name, args[0]))
            return None
        return original(name, args=args, **kwargs)

    monkeypatch.setattr(outbound_calls.celery_app, "send_task", send_task)
    return sent


EVERY_DAY = {day: [["09:00", "18:00"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}


def make_campaign(bot, **overrides) -> Campaign:
    values = {"company": bot.company, "bot": bot, "name": "Recall", "timezone": noon_zone(timezone.now()),
              "calling_hours": EVERY_DAY, "max_concurrent_calls": 2, "calls_per_minute": 10, "max_attempts": 3,
              "retry_busy_minutes": 30, "retry_no_answer_minutes": 30, "retry_failed_minutes": 30,
              "status": Campaign.Status.RUNNING}
    values.update(overrides)
    return Campaign.objects.create(**values)


@pytest.fixture
def campaign(bot_a, number_a):
    return make_campaign(bot_a)


def add(campaign, *phones, **variables):
    """Contacts of ``campaign`` by their E.164 numbers; ``name=`` and any other keyword as variables."""
    from campaigns.models import Contact

    return [Contact.objects.create(campaign=campaign, phone=phone, name=variables.get("name", ""),
                                   variables={k: v for k, v in variables.items() if k != "name"})
            for phone in phones]


def calls_of(campaign) -> list[Call]:
    return list(Call.objects.filter(campaign_attempt__campaign=campaign).order_by("pk"))


PHONES = [f"+4930123457{i}" for i in range(10)]  # valid German numbers, none of them number_a
