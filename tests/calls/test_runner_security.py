"""The runner lets in only verified calls, counts every line, and frees it the moment the media ends.

Against the real runner over real sockets (and the real models: admitted calls speak).
"""

import asyncio
import json
import re
import threading
import time

import httpx
import pytest
import websockets

from pipelines.live.twilio_caller import TwilioCaller, voice_webhook
from tests.calls.conftest import TWILIO_TOKEN, number_for, signed_post, wait_for_call
from tests.conftest import make_staff
from voicebot import call_links
from voicebot.models import Call

pytestmark = [pytest.mark.models, pytest.mark.django_db(transaction=True)]

SIP_CALLER = "sip:+14155550123@customer.sip.twilio.com:5060"  # 45 characters


def ws(base: str, path: str) -> str:
    return base.replace("http://", "ws://") + path


async def token_for(base: str, to: str, call_sid: str, from_: str = "+12125550199") -> str:
    twiml = await voice_webhook(base, to=to, from_=from_, call_sid=call_sid, auth_token=TWILIO_TOKEN)
    return re.search(r'name="token" value="([^"]+)"', twiml).group(1)


async def until(condition, timeout: float = 10.0) -> None:
    """Wait (polling) until ``condition()`` holds; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.02)


async def refused(url: str, messages: list[dict]) -> int:
    """Send a stream's first messages; the close code the runner answers with (no audio may come first)."""
    async with websockets.connect(url) as sock:
        for message in messages:
            await sock.send(json.dumps(message))
        try:
            while True:
                frame = json.loads(await asyncio.wait_for(sock.recv(), 10))
                assert frame.get("event") != "media", "a refused stream got the bot talking"
        except websockets.ConnectionClosed:
            return sock.close_code


def twilio_start(call_sid: str, token: str | None) -> list[dict]:
    caller = TwilioCaller("ws://unused", to="+4930555000", call_sid=call_sid,
                          parameters={"token": token} if token is not None else {})
    return caller.start_messages()


def test_forged_stream_starts_are_refused_and_nothing_is_stored(runner, desk_number, fake_twilio, queued):
    base, hub = runner
    long_sid = "CA" + "x" * 198  # 200 characters

    async def scenario():
        media = ws(base, "/telephony/twilio/media")
        codes = {"no token": await refused(media, twilio_start("CAforged", None)),
                 "forged token": await refused(media, twilio_start("CAforged", "not-a-token"))}
        other = await token_for(base, desk_number.number, "CAreal")
        codes["token of another call"] = await refused(media, twilio_start("CAother", other))
        plivo_start = [{"event": "start", "start": {"streamId": "s1", "callId": "CAreal"}},
                       {"event": "media", "media": {"payload": ""}}]
        codes["twilio token on the plivo socket"] = await refused(
            ws(base, f"/telephony/plivo/media?token={other}"), plivo_start)

        real = await token_for(base, desk_number.number, long_sid, from_=SIP_CALLER)
        caller = await TwilioCaller(media, to=desk_number.number, from_=SIP_CALLER, call_sid=long_sid,
                                    parameters={"token": real}).connect()
        assert await caller.wait_bot_done(), "the verified call got no greeting"
        await caller.hang_up()
        codes["spent token"] = await refused(media, twilio_start(long_sid, real))
        return codes

    codes = asyncio.run(scenario())
    assert codes == dict.fromkeys(codes, 1008), codes
    call = wait_for_call(long_sid)
    assert (call.external_id, call.from_number, call.to_number) == (long_sid, SIP_CALLER, desk_number.number)
    assert Call.objects.count() == 1  # only the verified call
    assert fake_twilio.requests == []  # nobody else's call was hung up


@pytest.mark.parametrize("provider,path", [("twilio", "/telephony/twilio/voice"), ("telnyx", "/telephony/telnyx/voice"),
                                           ("plivo", "/telephony/plivo/answer"), ("daily", "/telephony/daily/dialin")])
def test_webhooks_need_the_providers_signature(provider, path, runner, desk_bot):
    base, hub = runner
    number = number_for(desk_bot, provider, "+4930555000")
    form = {"CallSid": "c-1", "CallUUID": "c-1", "From": "+12125550199", "To": number.number}
    as_json = provider == "daily"
    body = {"To": number.number, "From": "+12125550199", "callId": "c-1", "callDomain": "d-1"} if as_json else None
    sign = dict(json_body=body) if as_json else {}

    unsigned = httpx.post(base + path, json=body) if as_json else httpx.post(base + path, data=form)
    assert unsigned.status_code == 403
    bad = {"twilio": {"X-Twilio-Signature": "AAAA"}, "plivo": {"X-Plivo-Signature-V3": "AAAA"},
           "telnyx": {"telnyx-signature-ed25519": "AAAA"}, "daily": {"X-Webhook-Signature": "AAAA"}}[provider]
    assert signed_post(base, provider, path, form, headers=bad, **sign).status_code == 403
    tampered = signed_post(base, provider, path, form, **sign).request  # signed, then a parameter changed
    forged = httpx.post(base + path, content=tampered.content.replace(b"12125550199", b"12125550100"),
                        headers=dict(tampered.headers))
    assert forged.status_code == 403
    not_what_it_says = (signed_post(base, provider, path, json_body=[body]) if as_json  # a list, not an object
                        else signed_post(base, provider, path, form, headers={"content-type": "application/json"}))
    assert not_what_it_says.status_code == 400
    assert hub.gate.active == 0

    if provider == "daily":  # correctly signed, but Daily's cloud is not reachable here: no room, no line
        return
    good = signed_post(base, provider, path, form, headers={"Host": "evil.example"})
    assert good.status_code == 200, good.text
    assert "evil.example" not in good.text and ws(base, f"/telephony/{provider}/media") in good.text


def test_every_stream_start_takes_a_line_runner_and_company(runner, desk_number, fake_twilio, settings, queued):
    base, hub = runner
    media = ws(base, "/telephony/twilio/media")

    async def start_three() -> list[TwilioCaller]:
        tokens = [await token_for(base, desk_number.number, f"CAline{i}") for i in range(3)]
        callers = []
        for i, token in enumerate(tokens):
            callers.append(await TwilioCaller(media, to=desk_number.number, call_sid=f"CAline{i}",
                                              parameters={"token": token}).connect())
            await until(lambda: hub.gate.active == min(i + 1, 2) or callers[-1].closed_by_server.is_set())
        await asyncio.wait_for(callers[2].closed_by_server.wait(), 20)  # the busy apology, then closed
        assert not callers[0].closed_by_server.is_set() and not callers[1].closed_by_server.is_set()
        assert hub.gate.active == 2 and len(callers[2].bot_audio) > 8000
        for caller in callers[:2]:
            await caller.hang_up()
        return callers

    settings.CALLS_MAX_CONCURRENT = 2  # the runner's lines
    asyncio.run(start_three())
    deadline = time.monotonic() + 5  # the refused call's hang-up follows its apology
    while not fake_twilio.requests and time.monotonic() < deadline:
        time.sleep(0.05)
    assert fake_twilio.requests == [("/2010-04-01/Accounts/ACtest/Calls/CAline2.json", {"Status": "completed"})]
    wait_for_call("CAline1")

    settings.CALLS_MAX_CONCURRENT = 8
    desk_number.company.__class__.objects.filter(pk=desk_number.company_id).update(max_lines=1)  # the company's

    async def start_two():
        tokens = [await token_for(base, desk_number.number, f"CAco{i}") for i in range(2)]
        first = await TwilioCaller(media, to=desk_number.number, call_sid="CAco0", parameters={"token": tokens[0]}).connect()
        await until(lambda: hub.gate.company_active(desk_number.company_id) == 1)
        second = await TwilioCaller(media, to=desk_number.number, call_sid="CAco1", parameters={"token": tokens[1]}).connect()
        await asyncio.wait_for(second.closed_by_server.wait(), 20)
        assert hub.gate.company_active(desk_number.company_id) == 1 and not first.closed_by_server.is_set()
        busy = (await voice_webhook(base, to=desk_number.number, from_="+1", call_sid="CAco2", auth_token=TWILIO_TOKEN))
        assert "all our lines are busy" in busy and "<Stream" not in busy
        await first.hang_up()

    asyncio.run(start_two())
    assert Call.objects.filter(external_id__in=["CAline2", "CAco1"]).count() == 0


def test_browser_offers_need_a_fresh_link_of_staff_and_garbage_holds_no_line(runner, desk_bot, company_b, settings):
    base, hub = runner
    offer_url = f"{base}/call/{desk_bot.slug}/offer"
    staff = make_staff("sam", desk_bot.company)
    outsider = make_staff("otto", company_b)
    garbage = {"sdp": "v=0\r\nthis is not sdp\r\n", "type": "offer"}

    outsiders = httpx.post(offer_url, params={"token": call_links.sign(desk_bot.slug, outsider.pk)}, json=garbage)
    assert outsiders.status_code == 403 and "may not call" in outsiders.text
    token = call_links.sign(desk_bot.slug, staff.pk)
    bad = httpx.post(offer_url, params={"token": token}, json=garbage)
    assert bad.status_code == 400 and "bad WebRTC offer" in bad.text
    assert hub.gate.active == 0
    again = httpx.post(offer_url, params={"token": token}, json=garbage)
    assert again.status_code == 403 and "already used" in again.text

    # A real offer whose peer never sends audio: the call ends after the no-audio limit, its line freed.
    settings.CALLS_NO_AUDIO_TIMEOUT_SEC = 2.0
    from aiortc import RTCPeerConnection

    async def silent_peer():
        pc = RTCPeerConnection()
        pc.addTransceiver("audio", direction="sendrecv")
        await pc.setLocalDescription(await pc.createOffer())
        async with httpx.AsyncClient() as client:
            answer = await client.post(offer_url, params={"token": call_links.sign(desk_bot.slug, staff.pk)},
                                       json={"sdp": pc.localDescription.sdp, "type": "offer"})
        assert answer.status_code == 200, answer.text
        await pc.close()
        started = time.monotonic()
        while hub.gate.active and time.monotonic() - started < 15:
            await asyncio.sleep(0.1)
        return time.monotonic() - started

    freed_after = asyncio.run(silent_peer())
    assert hub.gate.active == 0 and freed_after < 15


def test_storing_never_holds_a_line(runner, desk_number, monkeypatch, queued):
    """With the store stuck (a database or broker away), the caller's line is free at hang-up."""
    from pipelines.live import factory

    base, hub = runner
    unblock, storing = threading.Event(), threading.Event()
    real_save = factory.save_call_record

    def stuck_save(record):
        storing.set()
        unblock.wait(30)
        return real_save(record)

    monkeypatch.setattr(factory, "save_call_record", stuck_save)

    async def call_and_hang_up():
        caller = await TwilioCaller.dial(base, to=desk_number.number, auth_token=TWILIO_TOKEN, call_sid="CAstuck")
        assert await caller.wait_bot_done()
        assert hub.gate.active == 1
        await caller.hang_up()

    try:
        asyncio.run(call_and_hang_up())
        assert storing.wait(10), "the call was never stored"
        assert hub.gate.active == 0  # freed while the store is still stuck
    finally:
        unblock.set()
    wait_for_call("CAstuck")
