"""Telnyx, Plivo and Exotel media streams (Pipecat serializers) against the real runner and models."""

import asyncio
import base64
import json
import time

import httpx
import pytest
import websockets

from tests.calls.conftest import wait_for_call

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


@pytest.mark.parametrize("provider", ["telnyx", "plivo", "exotel"])
def test_provider_stream_hears_the_greeting_and_is_stored(provider, runner, desk_number, queued):
    base, _ = runner
    url = base.replace("http://", "ws://") + f"/telephony/{provider}/media"
    if provider == "plivo":  # Plivo's start has no numbers: the answer XML puts them in the URL
        answer = httpx.post(base + "/telephony/plivo/answer", data={"To": desk_number.number, "From": "+12125550199",
                                                                   "CallUUID": "plivo-call"}).text
        assert "/telephony/plivo/media?to=%2B4930555000" in answer
        url = answer.split(">ws://")[1].split("</Stream>")[0].replace("&amp;", "&")
        url = "ws://" + url
    received = asyncio.run(greeting_over(provider, url, desk_number.number))
    audio_events = [m for m in received if m.get("event") in ("media", "playAudio")]
    assert len(audio_events) >= 10, received[:3]
    call = wait_for_call({"telnyx": "v3:telnyx-call", "plivo": "plivo-call", "exotel": "exotel-call"}[provider])
    assert call.transport == provider and call.end_reason == "caller_hangup"
    assert call.turns.filter(role="bot").first().text == "Hello, Alpha Dental, how can I help?"
