"""``manage.py demo_receiver``: the demo client's booking system and webhook receiver, on loopback.

    POST /bookings   a bot's booking tool (signed like every tool call): answers what to say
    POST /webhooks   the company's signed webhooks (call.ended, lead.captured, booking.created...)
    GET  /           what it received, as JSON (also its readiness check)

Every request's ``X-Voicebot-Signature`` is checked with the demo's secret (``demo_secret``,
the same one ``seed_demo --receiver`` gives the tool and the endpoint); an unsigned or
forged request gets 401 and is not counted. ``manage.py demo`` runs it and allows its origin
to the guarded outbound client (``VOICEBOT_OUTBOUND_ALLOWED_ORIGINS``).
"""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from django.conf import settings
from django.core.management.base import BaseCommand

from voicebot import local_secret, signing

log = logging.getLogger("voicebot.demo_receiver")
SECRET_NAME = "demo_receiver_secret"
DEFAULT_PORT = 8791


def demo_secret() -> str:
    """The install's secret for the demo receiver (kept in the data folder, never committed)."""
    return local_secret.secret(settings.DATA_DIR, SECRET_NAME)


def describe_booking(fields: dict) -> str:
    return ", ".join(f"{name} {value}" for name, value in fields.items()) or "no fields"


class Received:
    def __init__(self):
        self.lock = threading.Lock()
        self.bookings: list[dict] = []
        self.events: list[dict] = []

    def as_dict(self) -> dict:
        with self.lock:
            return {"bookings": list(self.bookings), "events": list(self.events)}


def make_handler(secret: str, received: Received):
    class Handler(BaseHTTPRequestHandler):
        def _answer(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            self._answer(200, received.as_dict())

        def do_POST(self):
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                return self._answer(400, {"error": "bad Content-Length"})
            body = self.rfile.read(min(length, 1_000_000))
            if not signing.verify(secret, body, self.headers.get(signing.SIGNATURE_HEADER, "")):
                log.warning("demo receiver: refused an unsigned or forged request to %s", self.path)
                return self._answer(401, {"error": "bad or missing X-Voicebot-Signature"})
            try:
                payload = json.loads(body or b"{}")
            except ValueError:
                return self._answer(400, {"error": "the body is not JSON"})
            event = self.headers.get(signing.EVENT_HEADER, "")
            if self.path.rstrip("/") == "/bookings":
                fields = payload.get("fields") or {}
                with received.lock:
                    received.bookings.append(fields)
                log.info("demo receiver: booking received (%s)", describe_booking(fields))
                return self._answer(200, {"say": "You're booked. See you soon!", "data": {"confirmed": True}})
            if self.path.rstrip("/") == "/webhooks":
                with received.lock:
                    received.events.append({"event": event, "data": payload.get("data", {})})
                log.info("demo receiver: webhook %s received", event or payload.get("event", "?"))
                return self._answer(200, {"ok": True})
            return self._answer(404, {"error": f"nothing at {self.path}"})

        def log_message(self, *args):  # requests are logged above, one line each
            pass

    return Handler


class Command(BaseCommand):
    help = "Run the demo's local booking system and webhook receiver (signed requests only)."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=DEFAULT_PORT)

    def handle(self, *args, port=DEFAULT_PORT, **options):
        server = ThreadingHTTPServer(("127.0.0.1", port), make_handler(demo_secret(), Received()))
        log.info("demo receiver listening on http://127.0.0.1:%s (bookings, webhooks)", port)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
