"""Telnyx, Plivo and Exotel media streams (Pipecat serializers) against the real runner and models;
hang-up and transfer reach a local fake of the providers' REST APIs."""

import asyncio
import audioop
import base64
import json
import re
import time

import httpx
import pytest
import websockets

from pipelines.dialogue.engine import GOODBYE as FAREWELL
from pipelines.dialogue.engine import TRANSFERRING as TRANSFER_PHRASE
from pipelines.live.twilio_caller import TwilioCaller
from tests.calls.conftest import PLIVO_AUTH, TELNYX_AUTH, audio, number_for, signed_post, wait_for_call

pytestmark = [pytest.mark.models, pytest.mark.django_db(transaction=True)]

START = {
    "telnyx": lambda to: {"event": "start", "stream_id": "st-1", "start": {
        "call_control_id": "v3:telnyx-call", "from": "+12125550199", "to": to,
        "media_format": {"encoding": "PCMU", "sample_rate": 8000, "channels": 1}}},
    "plivo": lambda to: {"event": "start", "start": {"streamId": "pl-stream", "callId": "plivo-call"}},
    "exotel": lambda to: {"event": "start", "start": {"stream_sid": "ex-stream", "call_sid": "exotel-call",
                                                      "account_sid": "ex-acct", "from": "+12125550199", "to": to}},
}
SILENCE = {"telnyx": b"\xff" * 160, "plivo": b"\xff" * 160, "exotel": b"\0" * 320}  # mu-law / PCM16 silence


CALL_IDS = {"telnyx": "v3:telnyx-call", "plivo": "plivo-call", "exotel": "exotel-call"}


def stream_url(provider: str, base: str, number) -> str:
    """Where the provider's stream goes: from the signed webhook's answer (Exotel: the number's secret URL)."""
    if provider == "exotel":  # Exotel signs nothing: staff paste this URL into the Voicebot applet
        return base.replace("http://", "ws://") + f"/telephony/exotel/media/{number.stream_secret}"
    path, form = {
        "telnyx": ("/telephony/telnyx/voice", {"CallSid": CALL_IDS["telnyx"], "From": "+12125550199",
                                                "To": number.number}),
        "plivo": ("/telephony/plivo/answer", {"CallUUID": CALL_IDS["plivo"], "From": "+12125550199",
                                               "To": number.number}),
    }[provider]
    answer = signed_post(base, provider, path, form)
    assert answer.status_code == 200, answer.text
    url = re.search(r'(ws://[^"<]+)', answer.text).group(1).replace("&amp;", "&")
    assert "?token=" in url and url.startswith(base.replace("http://", "ws://") + f"/telephony/{provider}/media")
    return url


@pytest.fixture
def provider_number(desk_bot, request):
    return number_for(desk_bot, request.param, "+4930555000")


async def greeting_over(provider: str, url: str, to: str) -> list[dict]:
    async with websockets.connect(url) as ws:
        await ws.send(json.dumps({"event": "connected"}))
        await ws.send(json.dumps(START[provider](to)))
        received, deadline = [], time.monotonic() + 30
        while time.monotonic() < deadline and sum(m.get("event") in ("media", "playAudio") for m in received) < 10:
            payload = base64.b64encode(SILENCE[provider]).decode()
            await ws.send(json.dumps({"event": "media", "media": {"payload": payload}}))
            try:
                received.append(json.loads(await asyncio.wait_for(ws.recv(), 0.02)))
            except asyncio.TimeoutError:
                pass
    return received


@pytest.mark.parametrize("provider_number", ["telnyx", "plivo", "exotel"], indirect=True)
def test_provider_stream_hears_the_greeting_and_is_stored(provider_number, runner, queued, fake_providers):
    base, _ = runner
    provider = provider_number.provider
    url = stream_url(provider, base, provider_number)
    received = asyncio.run(greeting_over(provider, url, "+4930000000"))  # the start's own "to" is not believed
    audio_events = [m for m in received if m.get("event") in ("media", "playAudio")]
    assert len(audio_events) >= 10, received[:3]
    call = wait_for_call(CALL_IDS[provider])
    assert call.transport == provider and call.end_reason == "caller_hangup"
    assert call.to_number == provider_number.number
    assert call.turns.filter(role="bot").first().text == "Hello, Alpha Dental, how can I help?"
    assert fake_providers.requests == []  # the caller hung up: nothing to end on the provider's side


class ProviderCaller(TwilioCaller):
    """The Twilio test caller speaking Telnyx's, Plivo's or Exotel's stream protocol."""

    def __init__(self, provider: str, url: str, *, to: str):
        self.provider = provider
        super().__init__(url, to=to, call_sid=CALL_IDS[provider])

    def start_messages(self) -> list[dict]:
        return [{"event": "connected"}, START[self.provider](self.to)]  # ids as in CALL_IDS

    def media_message(self, pcm8: bytes) -> dict:
        payload = pcm8 if self.provider == "exotel" else audioop.lin2ulaw(pcm8, 2)  # Exotel: PCM16
        return {"event": "media", "media": {"payload": base64.b64encode(payload).decode()}}

    def bot_pcm(self, message: dict) -> bytes | None:
        if message.get("event") not in ("media", "playAudio"):
            return None
        payload = base64.b64decode(message["media"]["payload"])
        return payload if self.provider == "exotel" else audioop.ulaw2lin(payload, 2)


def call_ending(provider: str, base: str, number, wav: str) -> ProviderCaller:
    """Hear the greeting, say ``wav``, then keep the line open until the runner closes it."""
    url = stream_url(provider, base, number)

    async def scenario():
        caller = await ProviderCaller(provider, url, to=number.number).connect()
        assert await caller.wait_bot_done(), "no greeting"
        await caller.say(audio(wav))
        while not caller.closed_by_server.is_set():
            await caller.silence(0.2)
        return caller

    return asyncio.run(asyncio.wait_for(scenario(), 90))


HANG_UP = {
    "telnyx": [("POST", "/v2/calls/v3:telnyx-call/actions/hangup", TELNYX_AUTH, {})],
    "plivo": [("DELETE", "/v1/Account/MAtest/Call/plivo-call/", PLIVO_AUTH, None)],
    "exotel": [],  # no REST call control: closing the stream ends the Voicebot applet
}


@pytest.mark.parametrize("provider_number", ["telnyx", "plivo", "exotel"], indirect=True)
def test_goodbye_hangs_up_through_the_provider(provider_number, runner, fake_providers, queued):
    base, _ = runner
    provider = provider_number.provider
    caller = call_ending(provider, base, provider_number, "caller_bye.wav")
    call = wait_for_call(CALL_IDS[provider])
    assert caller.closed_by_server.is_set()
    assert (call.transport, call.end_reason) == (provider, "goodbye")
    assert list(call.turns.values_list("text", flat=True))[-1] == FAREWELL
    assert fake_providers.requests == HANG_UP[provider]


@pytest.mark.parametrize("provider_number", ["telnyx", "plivo"], indirect=True)
def test_transfer_request_transfers_through_the_provider(provider_number, runner, fake_providers, queued):
    base, _ = runner
    provider = provider_number.provider
    call_ending(provider, base, provider_number, "caller_human.wav")
    call = wait_for_call(CALL_IDS[provider])
    assert (call.end_reason, call.status) == ("transfer", "transferred")
    assert TRANSFER_PHRASE in list(call.turns.values_list("text", flat=True))
    if provider == "telnyx":
        assert fake_providers.requests == [
            ("POST", "/v2/calls/v3:telnyx-call/actions/transfer", TELNYX_AUTH, {"to": "+4930999999"})]
        return
    [(method, path, auth, body)] = fake_providers.requests  # no hang-up after a transfer
    assert (method, path, auth) == ("POST", "/v1/Account/MAtest/Call/plivo-call/", PLIVO_AUTH)
    assert (body["legs"], body["aleg_method"]) == ("aleg", "POST")
    assert body["aleg_url"].startswith(base + "/telephony/plivo/transfer?token=")
    dial = httpx.post(body["aleg_url"]).text  # what Plivo fetches next for the caller's leg
    assert dial.endswith("<Response><Dial><Number>+4930999999</Number></Dial></Response>")


@pytest.mark.parametrize("provider_number", ["telnyx", "plivo"], indirect=True)
def test_unknown_number_gets_the_apology_at_the_webhook(provider_number, runner, fake_providers):
    base, _ = runner
    provider = provider_number.provider
    path = {"telnyx": "/telephony/telnyx/voice", "plivo": "/telephony/plivo/answer"}[provider]
    answer = signed_post(base, provider, path, {"CallSid": "c-1", "CallUUID": "c-1", "From": "+1", "To": "+4930000000"})
    apology = "Sorry, this number is not in service. Goodbye."
    assert answer.status_code == 200 and apology in answer.text and "<Hangup/>" in answer.text
    assert "Stream" not in answer.text and fake_providers.requests == []
