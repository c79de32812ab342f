"""Fixtures of the dialogue tests: the real embedder, a local action receiver, the demo salon bot."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.management import call_command

from pipelines.config import BotConfig
from pipelines.dialogue.embedder import default_embedder
from pipelines.dialogue.knowledge import PassageRetriever
from voicebot.models import Bot, BotTool

# Sunday 22 November 2026, 10:00 in New York (the demo salon's time zone).
FIXED_NOW = datetime(2026, 11, 22, 15, 0, tzinfo=timezone.utc)
RECEIVER_SECRET = "whsec-test-booking"
SALON_FACTS = [
    "A manicure costs 30 dollars and takes 45 minutes. A pedicure costs 40 dollars.",
    "Elegant Beauty Salon is open Tuesday to Saturday from 9 am to 7 pm, closed Sunday and Monday.",
    "Gift cards for any amount can be bought at the front desk or by phone.",
    "The salon is at 12 Main Street; free parking is behind the building.",
]


def fixed_clock():
    return FIXED_NOW


@pytest.fixture(scope="session")
def embed():
    """The bundled all-MiniLM-L6-v2 (int8 ONNX), loaded once for the session."""
    return default_embedder()


@pytest.fixture(scope="session")
def salon_knowledge(embed):
    return PassageRetriever(SALON_FACTS, embed, top_k=2, threshold=0.3)


class Receiver:
    """A local HTTP endpoint standing in for the client's booking system."""

    def __init__(self):
        self.requests: list[dict] = []
        self.answer: dict = {"say": "You're booked. See you soon!"}
        self.status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                payload = json.dumps(receiver.answer).encode()
                self.send_response(receiver.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(settings):
    """The receiver is on 127.0.0.1: private tool targets are allowed for the test (voicebot.outbound)."""
    settings.OUTBOUND_ALLOW_PRIVATE = True
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def demo_bot(db, receiver):
    """The seeded demo salon bot, with its booking_created tool pointed at the local receiver."""
    call_command("seed_demo", stdout=open("/dev/null", "w"))
    bot = Bot.objects.get(slug="elegant-receptionist")
    BotTool.objects.create(bot=bot, name="booking_created", description="Create the booking in the calendar.",
                           url=receiver.url + "/bookings", secret=RECEIVER_SECRET, timeout_sec=5)
    return bot


@pytest.fixture
def demo_config(demo_bot) -> BotConfig:
    return BotConfig.for_slug(demo_bot.slug)
