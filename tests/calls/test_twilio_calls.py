"""Twilio calls end to end: a Media Streams client plays the caller against the real runner and models."""

import asyncio
import re

import httpx
import numpy as np
import pytest

from pipelines.live.twilio_caller import TwilioCaller
from tests.calls.conftest import audio, wait_for_call
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


def test_healthz_and_voice_webhook(runner, desk_number):
    base, _hub = runner
    health = httpx.get(base + "/healthz").json()
    assert health["ok"] is True and "active_calls" in health

    twiml = httpx.post(base + "/telephony/twilio/voice",
                       data={"To": desk_number.number, "From": "+12125550199", "CallSid": "CA1"}).text
    assert "<Connect><Stream url=\"ws://127.0.0.1:" in twiml and "/telephony/twilio/media" in twiml
    assert '<Parameter name="to" value="+4930555000"/>' in twiml
    assert '<Parameter name="bot" value="alpha-dental"/>' in twiml

    unknown = httpx.post(base + "/telephony/twilio/voice", data={"To": "+4930000000", "From": "+1", "CallSid": "CA2"}).text
    assert "<Say>Sorry, this number is not in service. Goodbye.</Say><Hangup/>" in unknown


def test_caller_hears_greeting_and_reply_and_call_is_stored_once(runner, desk_number, fake_twilio, queued, loaded_models):
    base, hub = runner

    async def conversation():
        caller = await TwilioCaller(ws_url(base), to=desk_number.number).connect()
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


def test_unknown_number_gets_an_apology_and_a_hang_up(runner, fake_twilio, caplog):
    base, _hub = runner

    async def call_unknown():
        caller = await TwilioCaller(ws_url(base), to="+4930000000").connect()
        await asyncio.wait_for(caller.closed_by_server.wait(), 15)
        return caller

    caller = asyncio.run(call_unknown())
    assert len(caller.bot_audio) > 8000 and "apology-end" in caller.marks
    assert fake_twilio.requests == [(f"/2010-04-01/Accounts/ACtest/Calls/{caller.call_sid}.json", {"Status": "completed"})]
    assert Call.objects.count() == 0


def test_voice_webhook_refuses_calls_beyond_capacity(runner, desk_number, settings):
    base, _hub = runner
    settings.CALLS_MAX_CONCURRENT = 0
    twiml = httpx.post(base + "/telephony/twilio/voice",
                       data={"To": desk_number.number, "From": "+12125550199", "CallSid": "CA3"}).text
    assert "<Say>Sorry, all our lines are busy." in twiml and "<Hangup/>" in twiml
