"""Daily SIP dial-in: the webhook creates a SIP room through Daily's REST API (a local fake here)
and runs the bot's pipeline on the room's transport.

Daily's media cloud cannot run here: the room's transport is replaced by a
file-driven caller with the DailyTransport events the runner uses, so the
test covers webhook -> REST -> pipeline -> stored call, not the SIP leg.
"""

import asyncio
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from pipelines.live.sim_transport import SimCaller, SimTransport
from tests.calls.conftest import audio, number_for, signed_post, wait_for_call

pytestmark = [pytest.mark.models, pytest.mark.django_db(transaction=True)]


class FakeDaily:
    def __init__(self):
        self.requests = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                fake.requests.append((self.path, self.headers.get("authorization"), body))
                answer = ({"name": "dialin-room", "url": "https://example.daily.co/dialin-room"}
                          if self.path == "/v1/rooms" else {"token": "owner-token"})
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.end_headers()
                self.wfile.write(json.dumps(answer).encode())

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


class RoomTransport(SimTransport):
    """The room's media as a file-driven caller, with the Daily events the runner listens to."""

    def __init__(self, caller):
        super().__init__(caller)
        for event in ("on_dialin_ready", "on_first_participant_joined", "on_participant_left"):
            self._register_event_handler(event)


@pytest.fixture
def fake_daily(settings):
    fake = FakeDaily()
    settings.DAILY_API_URL, settings.DAILY_API_KEY = fake.url, "daily-key"
    yield fake
    fake.server.shutdown()


def dialin(base, body):
    return signed_post(base, "daily", "/telephony/daily/dialin", json_body=body)


def test_dialin_webhook_validates_and_refuses_unknown_numbers(runner, fake_daily, desk_bot):
    base, _ = runner
    bad = dialin(base, {"To": "+4930555000"})
    assert bad.status_code == 400 and "callId" in bad.json()["error"]
    unknown = dialin(base, {"To": "+4930000000", "From": "+1", "callId": "c1", "callDomain": "d1"})
    assert unknown.status_code == 404 and fake_daily.requests == []
    twilio_number = number_for(desk_bot, "twilio", "+4930555001")  # not a Daily number: no room either
    other = dialin(base, {"To": twilio_number.number, "From": "+1", "callId": "c2", "callDomain": "d1"})
    assert other.status_code == 404 and fake_daily.requests == []
    unsigned = httpx.post(base + "/telephony/daily/dialin",
                          json={"To": "+4930555000", "From": "+1", "callId": "c3", "callDomain": "d1"})
    assert unsigned.status_code == 403 and fake_daily.requests == []


def test_dialin_creates_a_sip_room_and_the_bot_answers(runner, desk_bot, fake_daily, queued):
    desk_number = number_for(desk_bot, "daily", "+4930555000")
    base, hub = runner
    made = []

    def room_transport(room_url, token, dialin, bot_name):
        caller = SimCaller([audio("caller_hours.wav")])
        transport = RoomTransport(caller)
        made.append({"room": (room_url, token), "dialin": dialin, "caller": caller, "transport": transport,
                     "loop": asyncio.get_running_loop()})
        return transport

    previous = hub.room_transport
    hub.room_transport = room_transport
    try:
        response = dialin(base, {
            "To": desk_number.number, "From": "+12125550199", "callId": "daily-call-1", "callDomain": "dom-1"})
        assert response.status_code == 200, response.text
        room = made[0]
        assert room["room"] == ("https://example.daily.co/dialin-room", "owner-token")
        assert (room["dialin"].call_id, room["dialin"].call_domain) == ("daily-call-1", "dom-1")
        deadline = time.monotonic() + 10
        while "daily:daily-call-1" not in hub.active and time.monotonic() < deadline:
            time.sleep(0.05)
        call = hub.active["daily:daily-call-1"]
        room["caller"].on_speech_end = call.recorder.mark_caller_speech_end
        room["caller"].on_hangup = call.caller_hung_up
        time.sleep(0.5)  # the SIP leg comes up: Daily reports the caller in the room
        asyncio.run_coroutine_threadsafe(
            room["transport"]._call_event_handler("on_first_participant_joined", {"id": "caller"}), room["loop"])
        stored = wait_for_call("daily-call-1", timeout=60)
    finally:
        hub.room_transport = previous
    rooms, tokens = fake_daily.requests
    assert rooms[0] == "/v1/rooms" and rooms[1] == "Bearer daily-key"
    assert rooms[2]["properties"]["sip"] == {"display_name": "+12125550199", "sip_mode": "dial-in", "num_endpoints": 1}
    assert tokens[0] == "/v1/meeting-tokens" and tokens[2]["properties"]["room_name"] == "dialin-room"
    assert stored.transport == "daily" and stored.to_number == desk_number.number
    roles = list(stored.turns.order_by("index").values_list("role", flat=True))
    assert roles[:3] == ["bot", "caller", "bot"]
