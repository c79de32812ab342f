"""Conversation behaviour over the Twilio path with the real models: goodbye, transfer, silence,
barge-in, a dead LLM mid-call, and a database outage at hang-up."""

import asyncio

import pytest
from django.db import connections

from pipelines.dialogue.engine import GOODBYE as FAREWELL
from pipelines.dialogue.engine import SILENCE_GOODBYE as SILENCE_FAREWELL
from pipelines.dialogue.engine import STILL_THERE as SILENCE_REPROMPT
from pipelines.dialogue.engine import TRANSFERRING as TRANSFER_PHRASE
from pipelines.live.twilio_caller import TwilioCaller
from tests.calls.conftest import TWILIO_TOKEN, audio, wait_for_call

pytestmark = [pytest.mark.models, pytest.mark.django_db(transaction=True)]


def hangup_request(caller):
    return (f"/2010-04-01/Accounts/ACtest/Calls/{caller.call_sid}.json", {"Status": "completed"})


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 90))


def test_goodbye_ends_the_call_and_hangs_up(runner, desk_number, fake_twilio, queued):
    base, _ = runner

    async def scenario():
        caller = await TwilioCaller.dial(base, to=desk_number.number, auth_token=TWILIO_TOKEN)
        assert await caller.wait_bot_done()
        await caller.say(audio("caller_bye.wav"))
        await asyncio.wait_for(caller.closed_by_server.wait(), 20)
        return caller

    caller = run(scenario())
    call = wait_for_call(caller.call_sid)
    assert call.end_reason == "goodbye"
    assert list(call.turns.values_list("text", flat=True))[-1] == FAREWELL
    assert fake_twilio.requests == [hangup_request(caller)]


def test_transfer_request_dials_the_bots_transfer_number(runner, desk_number, fake_twilio, queued):
    base, _ = runner

    async def scenario():
        caller = await TwilioCaller.dial(base, to=desk_number.number, auth_token=TWILIO_TOKEN)
        assert await caller.wait_bot_done()
        await caller.say(audio("caller_human.wav"))
        await asyncio.wait_for(caller.closed_by_server.wait(), 20)
        return caller

    caller = run(scenario())
    call = wait_for_call(caller.call_sid)
    assert (call.end_reason, call.status) == ("transfer", "transferred")
    assert TRANSFER_PHRASE in list(call.turns.values_list("text", flat=True))
    assert fake_twilio.requests == [(f"/2010-04-01/Accounts/ACtest/Calls/{caller.call_sid}.json",
                                     {"Twiml": "<Response><Dial>+4930999999</Dial></Response>"})]


def test_silence_reprompts_once_then_says_goodbye_and_hangs_up(runner, desk_number, fake_twilio, queued):
    base, _ = runner

    async def scenario():
        caller = await TwilioCaller.dial(base, to=desk_number.number, auth_token=TWILIO_TOKEN)
        assert await caller.wait_bot_done()
        while not caller.closed_by_server.is_set():  # an open line with nobody speaking
            await caller.silence(0.2)
        return caller

    caller = run(scenario())
    call = wait_for_call(caller.call_sid)
    assert call.end_reason == "silence"
    bot_lines = list(call.turns.filter(role="bot").values_list("text", flat=True))
    assert bot_lines[1:] == [SILENCE_REPROMPT, SILENCE_FAREWELL]
    assert fake_twilio.requests == [hangup_request(caller)]


def test_barge_in_stops_the_bot_and_it_listens(runner, desk_number, fake_twilio, queued):
    base, _ = runner

    async def scenario():
        caller = await TwilioCaller.dial(base, to=desk_number.number, auth_token=TWILIO_TOKEN)
        while not caller.loud_arrivals:  # the greeting starts
            await caller.silence(0.02)
        started = asyncio.get_running_loop().time()
        speech_end = await caller.say(audio("caller_hours.wav"))  # talks over the greeting
        assert await caller.wait_bot_done(since=speech_end, timeout=40)
        await caller.hang_up()
        return caller, started

    caller, started = run(scenario())
    assert caller.clears, "the runner never told Twilio to drop the bot's audio"
    speech_start = started + 0.3  # the WAV's leading silence
    # VAD start (0.25 s of speech) + a 20 ms transport chunk + processing; generous for a loaded 2-core box.
    assert caller.clears[0] - speech_start < 1.2, caller.clears[0] - speech_start
    call = wait_for_call(caller.call_sid)
    turns = list(call.turns.order_by("index"))
    assert turns[0].role == "bot" and turns[0].interrupted
    assert any(t.role == "caller" and "hours" in t.text.lower() for t in turns)
    assert turns[-1].role == "bot" and turns[-1].text


def test_dead_llm_mid_call_speaks_the_fallback_and_the_call_goes_on(runner, desk_number, fake_twilio, queued, llm_proxy,
                                                                    settings):
    base, _ = runner
    # Only the death may bring the fallback: a first token slowed past the usual limit by a loaded
    # machine (CI once) is not what this test is about (the hung-LLM test below is).
    settings.LLM_FIRST_TOKEN_TIMEOUT_SEC = 15.0

    async def scenario():
        caller = await TwilioCaller.dial(base, to=desk_number.number, auth_token=TWILIO_TOKEN)
        assert await caller.wait_bot_done()
        spoke = await caller.say(audio("caller_hours.wav"))
        # A long quiet: on a loaded machine a pause between two sentences of the reply can pass 0.8 s.
        assert await caller.wait_bot_done(since=spoke, gap=2.5)
        llm_proxy.dead = True  # the LLM dies between turns
        spoke = await caller.say(audio("caller_price.wav"))
        assert await caller.wait_bot_done(since=spoke)
        await caller.say(audio("caller_bye.wav"))
        await asyncio.wait_for(caller.closed_by_server.wait(), 20)
        return caller

    caller = run(scenario())
    call = wait_for_call(caller.call_sid)
    lines = list(call.turns.filter(role="bot").values_list("text", flat=True))
    fallback = "Sorry, I am having trouble right now. Please say that again."
    # After the death: the fallback, and the call goes on to its goodbye. (Whether the reply before it
    # came from the LLM is not asserted: in full-suite runs it fell back now and then too; see the note.)
    assert llm_proxy.requests >= 2 and any(fallback in line for line in lines[2:]), lines
    assert call.end_reason == "goodbye" and lines[-1] == FAREWELL
    assert call.metrics["llm_failures"] >= 1


def test_hung_llm_is_cut_off_at_the_first_token_limit(runner, desk_number, fake_twilio, queued, llm_proxy, settings):
    """A server that accepts the request and says nothing: the caller hears the fallback, not silence."""
    base, _ = runner
    settings.LLM_FIRST_TOKEN_TIMEOUT_SEC = 1.5

    async def scenario():
        caller = await TwilioCaller.dial(base, to=desk_number.number, auth_token=TWILIO_TOKEN)
        assert await caller.wait_bot_done()
        llm_proxy.hung = True
        spoke = await caller.say(audio("caller_hours.wav"))
        assert await caller.wait_bot_done(since=spoke, timeout=20), "silence after the question"
        waited = caller.first_bot_audio_after(spoke) - spoke
        await caller.hang_up()
        return caller, waited

    caller, waited = run(scenario())
    call = wait_for_call(caller.call_sid)
    lines = list(call.turns.filter(role="bot").values_list("text", flat=True))
    assert lines[-1] == "Sorry, I am having trouble right now. Please say that again.", lines
    assert call.metrics["llm_failures"] == 1 and waited < 6  # 1.5 s limit + turn end + TTS, not the 30 s hang


def test_database_outage_at_hang_up_spools_and_replays(runner, desk_number, fake_twilio, queued, spool_dir):
    base, _ = runner
    db = connections["default"].settings_dict
    real_name = db["NAME"]

    async def scenario():
        caller = await TwilioCaller.dial(base, to=desk_number.number, auth_token=TWILIO_TOKEN)
        assert await caller.wait_bot_done()
        db["NAME"] = "voicebot_is_down"  # new connections now fail: the database is away
        await caller.hang_up()
        for _ in range(100):
            if list(spool_dir.glob("*.json")):
                break
            await asyncio.sleep(0.1)
        return caller

    try:
        caller = run(scenario())
        spooled = list(spool_dir.glob("*.json"))
        assert len(spooled) == 1 and caller.call_sid in spooled[0].name
    finally:
        db["NAME"] = real_name  # the database is back; the runner's replay loop stores the call
    call = wait_for_call(caller.call_sid)
    assert call.transport == "twilio" and call.turns.filter(role="bot").exists()
    assert not list(spool_dir.glob("*.json"))
    assert queued == [("postcall.tasks.process_call", [call.pk])]
