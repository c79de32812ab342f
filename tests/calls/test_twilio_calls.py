"""Twilio calls end to end: a Media Streams client plays the caller against the real runner and models."""

import asyncio
import re
import time

import httpx
import numpy as np
import pytest

from pipelines.live.twilio_caller import TwilioCaller
from tests.calls.conftest import TWILIO_TOKEN, audio, signed_post, wait_for_call
from voicebot.models import Call

pytestmark = [pytest.mark.models, pytest.mark.django_db(transaction=True)]


def ws_url(base: str) -> str:
    return base.replace("http://", "ws://") + "/telephony/twilio/media"


def words(pcm8: bytes, registry) -> str:
    """What the bot said, transcribed by the same Whisper (8 kHz -> 16 kHz)."""
    samples = np.frombuffer(pcm8, dtype=np.int16).astype(np.float32) / 32768.0
    samples = np.interp(np.arange(0, len(samples), 0.5), np.arange(len(samples)), samples).astype(np.float32)
    segments, _ = registry.whisper().transcribe(samples, beam_size=1, without_timestamps=True)
    return " ".join(s.text for s in segments).lower()


def voice(base, **form):
    return signed_post(base, "twilio", "/telephony/twilio/voice", form)


def test_healthz_and_voice_webhook(runner, desk_number):
    base, _hub = runner
    health = httpx.get(base + "/healthz").json()
    assert health["ok"] is True and "active_calls" in health

    twiml = voice(base, To=desk_number.number, From="+12125550199", CallSid="CA1").text
    assert f'<Connect><Stream url="{ws_url(base)}">' in twiml  # the public URL, not the Host header
    assert re.search(r'<Parameter name="token" value="[^"]+"/>', twiml)

    unknown = voice(base, To="+4930000000", From="+1", CallSid="CA2").text
    assert "<Say>Sorry, this number is not in service. Goodbye.</Say><Hangup/>" in unknown


def test_caller_hears_greeting_and_reply_and_call_is_stored_once(runner, desk_number, fake_twilio, queued, loaded_models):
    base, hub = runner

    async def conversation():
        caller = await TwilioCaller.dial(base, to=desk_number.number, auth_token=TWILIO_TOKEN)
        assert await caller.wait_bot_done(), "no greeting"
        greeting_audio = bytes(caller.bot_audio)
        spoke_at = await caller.say(audio("caller_hours.wav"))
        assert await caller.wait_bot_done(since=spoke_at), "no reply"
        reply_audio = bytes(caller.bot_audio[len(greeting_audio):])
        v2v = caller.first_bot_audio_after(spoke_at) - spoke_at
        await caller.hang_up()
        return caller, greeting_audio, reply_audio, v2v

    caller, greeting_audio, reply_audio, v2v = asyncio.run(conversation())
    heard = words(greeting_audio, loaded_models)  # 8 kHz mu-law: "Alpha" sometimes comes back as "Alfred"
    assert "dental" in heard and "help" in heard, heard
    assert len(words(reply_audio, loaded_models).split()) >= 2
    assert v2v > 0  # how fast is measured by bench/latency.py, not asserted here

    call = wait_for_call(caller.call_sid)
    assert call.transport == "twilio" and call.end_reason == "caller_hangup"
    assert call.to_number == desk_number.number and call.from_number == "+12125550199"
    turns = list(call.turns.order_by("index"))
    assert [t.role for t in turns][:3] == ["bot", "caller", "bot"]
    assert turns[0].text == "Hello, Alpha Dental, how can I help?"
    assert re.search(r"opening hours", turns[1].text, re.I)
    assert turns[2].text and turns[2].latency_ms > 0
    assert call.recording.size > 8000
    assert Call.objects.filter(external_id=caller.call_sid).count() == 1
    assert queued == [("postcall.tasks.process_call", [call.pk])]
    assert fake_twilio.requests == []  # the caller hung up: nothing to end on Twilio's side


def test_a_bot_switched_off_after_the_webhook_apologises_and_hangs_up(runner, desk_number, fake_twilio):
    """The stream's call was verified (its token), so the runner may hang it up through Twilio."""
    base, _hub = runner

    async def call_switched_off():
        caller = await TwilioCaller.dial(base, to=desk_number.number, auth_token=TWILIO_TOKEN, call_sid="CAoff")
        await asyncio.wait_for(caller.closed_by_server.wait(), 15)
        return caller

    desk_number.bot.__class__.objects.filter(pk=desk_number.bot_id).update(active=False)
    with pytest.raises(RuntimeError, match="did not connect a stream"):  # switched off before the webhook
        asyncio.run(call_switched_off())
    desk_number.bot.__class__.objects.filter(pk=desk_number.bot_id).update(active=True)

    async def switched_off_meanwhile():
        from pipelines.live.twilio_caller import voice_webhook

        twiml = await voice_webhook(base, to=desk_number.number, from_="+12125550199", call_sid="CAoff",
                                    auth_token=TWILIO_TOKEN)
        await asyncio.to_thread(lambda: desk_number.bot.__class__.objects.filter(pk=desk_number.bot_id)
                                .update(active=False))
        token = re.search(r'name="token" value="([^"]+)"', twiml).group(1)
        caller = await TwilioCaller(ws_url(base), to=desk_number.number, call_sid="CAoff",
                                    parameters={"token": token}).connect()
        await asyncio.wait_for(caller.closed_by_server.wait(), 15)
        return caller

    caller = asyncio.run(switched_off_meanwhile())
    assert len(caller.bot_audio) > 8000  # the apology
    deadline = time.monotonic() + 5  # the hang-up follows the stream's close
    while not fake_twilio.requests and time.monotonic() < deadline:
        time.sleep(0.05)
    assert fake_twilio.requests == [("/2010-04-01/Accounts/ACtest/Calls/CAoff.json", {"Status": "completed"})]
    assert Call.objects.count() == 0


def test_voice_webhook_refuses_calls_beyond_capacity(runner, desk_number, settings):
    base, _hub = runner
    settings.CALLS_MAX_CONCURRENT = 0
    twiml = voice(base, To=desk_number.number, From="+12125550199", CallSid="CA3").text
    assert "<Say>Sorry, all our lines are busy." in twiml and "<Hangup/>" in twiml
