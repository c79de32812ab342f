"""The demo's booking system and webhook receiver: signed requests only, reached through the guarded
client by its origin alone (no private address opened), wired to the demo bot by ``seed_demo --receiver``."""

import threading
from http.server import ThreadingHTTPServer

import httpx
import pytest
from django.core.management import call_command

from pipelines.config import BotConfig
from pipelines.dialogue.actions import ActionRunner
from postcall.models import WebhookEndpoint
from voicebot import outbound, signing
from voicebot.management.commands.demo_receiver import Received, demo_secret, make_handler
from voicebot.models import Bot


@pytest.fixture
def demo_receiver():
    received = Received()
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(demo_secret(), received))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", received
    server.shutdown()
    server.server_close()


def test_an_allowed_origin_opens_that_receiver_and_nothing_else(settings):
    settings.OUTBOUND_ALLOW_PRIVATE = False
    settings.OUTBOUND_ALLOWED_ORIGINS = ["http://127.0.0.1:8791"]
    assert outbound.check_url("http://127.0.0.1:8791/bookings").address == "127.0.0.1"
    for refused in ("http://127.0.0.1:8792/bookings", "https://127.0.0.1:8791/bookings", "http://10.0.0.8:8791/x",
                    "http://169.254.169.254:8791/latest"):
        with pytest.raises(outbound.OutboundRefused):
            outbound.check_url(refused)
    settings.OUTBOUND_ALLOWED_ORIGINS = ["http://169.254.169.254:80"]  # link-local: never, whatever is allowed
    with pytest.raises(outbound.OutboundRefused, match="never allowed"):
        outbound.check_url("http://169.254.169.254/latest")


def test_the_receiver_takes_signed_requests_only(demo_receiver):
    url, received = demo_receiver
    body = signing.body_bytes({"event": "booking_created", "fields": {"service": "manicure"}})
    forged = httpx.post(f"{url}/bookings", content=body, headers=signing.headers("wrong", body, "x", "1"))
    unsigned = httpx.post(f"{url}/bookings", content=body)
    assert forged.status_code == unsigned.status_code == 401 and received.bookings == []
    signed = httpx.post(f"{url}/bookings", content=body, headers=signing.headers(demo_secret(), body, "x", "1"))
    assert signed.status_code == 200 and signed.json()["say"] == "You're booked. See you soon!"
    assert httpx.get(url).json()["bookings"] == [{"service": "manicure"}]


def test_seeded_demo_bot_books_through_the_receiver_and_sends_it_webhooks(db, settings, demo_receiver):
    url, received = demo_receiver
    settings.OUTBOUND_ALLOW_PRIVATE = False
    settings.OUTBOUND_ALLOWED_ORIGINS = [url]
    call_command("seed_demo", receiver=url, stdout=open("/dev/null", "w"))
    call_command("seed_demo", receiver=url, stdout=open("/dev/null", "w"))  # idempotent
    bot = Bot.objects.get(slug="elegant-receptionist")
    assert [t.name for t in bot.tools.all()] == ["booking_created"]  # the booking scenario's on_complete
    assert bot.scenarios[0]["on_complete"] == "booking_created"
    endpoint = WebhookEndpoint.objects.get(company=bot.company)
    assert endpoint.url == f"{url}/webhooks" and "booking.created" in endpoint.events

    runner = ActionRunner(BotConfig.from_bot(bot).tools)
    result = runner.fire_event("booking_created", {"service": "manicure", "phone": "+12125550123"})
    assert result.ok and result.say == "You're booked. See you soon!", result
    assert received.bookings == [{"service": "manicure", "phone": "+12125550123"}]


def test_seed_demo_documents_are_the_salons(db):
    from knowledge.models import KnowledgeDocument

    call_command("seed_demo", documents=True, stdout=open("/dev/null", "w"))
    call_command("seed_demo", documents=True, stdout=open("/dev/null", "w"))  # the same bytes: one document each
    bot = Bot.objects.get(slug="elegant-receptionist")
    names = sorted(KnowledgeDocument.objects.filter(bots=bot).values_list("name", flat=True))
    assert names == ["handbook.md", "policies.md", "price-list.md"] and bot.use_knowledge


def test_libraries_log_only_warnings_unless_verbose(monkeypatch):
    from voicebot import logs

    assert logs.python_levels()["httpx"] == {"level": "WARNING"}
    assert "django.server" in logs.python_levels()
    monkeypatch.setenv("VOICEBOT_VERBOSE", "1")
    assert logs.python_levels() == {}
