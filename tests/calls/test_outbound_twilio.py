"""Outbound calls end to end through Twilio, faked at the HTTP boundary by ``FakeTwilioCloud``
(pipelines/live/fake_twilio.py): the platform places the call over REST, the fake rings the callee,
fetches the runner's answer URL signed as Twilio signs, streams the callee's voice over Media Streams
and posts signed status callbacks; the runner runs the call on the real models."""

import pytest

from pipelines.live.fake_twilio import Answers, Busy, HangUp, Say, Voicemail, WaitBot
from tests.calls.conftest import TWILIO_TOKEN
from tests.waiting import wait_until
from voicebot import outbound_calls
from voicebot.models import Call

pytestmark = [pytest.mark.models, pytest.mark.django_db(transaction=True)]

CALLEE = "+4915112345678"


def stored(call: Call, timeout: float = 30.0) -> Call:
    return wait_until(lambda: Call.objects.filter(pk=call.pk).exclude(end_reason="").first(), timeout,
                      what=f"outbound call {call.pk} to be stored")


def test_an_answered_call_greets_the_callee_by_name_after_their_hello(cloud, caller_bot, lines):
    cloud.callee(CALLEE, Answers(script=[Say(str(lines["hello"])), WaitBot(), HangUp()]))
    call = outbound_calls.request_call(bot=caller_bot, to=CALLEE, variables={"name": "Dana"})
    fake = cloud.wait(cloud.wait_for_call(to=CALLEE).sid, 60)
    call = stored(call)
    assert (call.direction, call.status, call.end_reason) == ("outbound", "completed", "caller_hangup")
    assert call.external_id == fake.sid and call.answered_at is not None and call.variables == {"name": "Dana"}
    turns = [(turn.role, turn.text) for turn in call.turns.all()]
    assert turns[0][0] == "caller" and "hello" in turns[0][1].lower(), (turns, call.metrics)
    assert turns[1][0] == "bot" and turns[1][1].startswith("Hi Dana, this is the front desk")
    assert len([role for role, _ in turns if role == "bot"]) == 1  # "Hello?" is answered by the greeting alone
    # Nothing before the callee's first words; the greeting right after them.
    assert fake.first_bot_audio > fake.say_ends[0]
    assert call.metrics["opening"]["greeting"] == "after the callee's first words"
    # Twilio's signed requests were all accepted: the answer URL and every status callback.
    assert fake.webhooks[0].http_status == 200 and "<Stream" in fake.answer_twiml
    assert [c.status for c in fake.callbacks] == ["initiated", "ringing", "in-progress", "completed"]
    assert {c.http_status for c in fake.callbacks} == {204}


def test_a_busy_callee_ends_the_call_busy_without_a_conversation(cloud, caller_bot):
    cloud.callee(CALLEE, Busy())
    call = outbound_calls.request_call(bot=caller_bot, to=CALLEE)
    fake = cloud.wait(cloud.wait_for_call(to=CALLEE).sid, 30)
    call = wait_until(lambda: Call.objects.filter(pk=call.pk, status="busy").first(), 15, what="the busy status")
    assert call.end_reason == "not_answered" and not call.turns.exists() and call.answered_at is None
    assert fake.webhooks == []  # the answer URL is fetched only for an answered call


def test_the_answer_url_and_status_callback_refuse_unsigned_or_unplaced_calls(runner, cloud, caller_bot):
    import httpx
    from twilio.request_validator import RequestValidator

    base, _hub = runner
    for path in ("/telephony/twilio/outbound", "/telephony/twilio/status"):
        form = {"CallSid": "CAforged", "From": "+4930555000", "To": CALLEE, "CallStatus": "in-progress"}
        assert httpx.post(base + path + "?call=1", data=form).status_code == 403  # unsigned
        url = base + path + "?call=not-a-reference"
        signed = {"X-Twilio-Signature": RequestValidator(TWILIO_TOKEN).compute_signature(url, form)}
        refused = httpx.post(url, data=form, headers=signed)  # Twilio's signature, but no call we placed
        assert refused.status_code == 403 and "not placed by this platform" in refused.text


def test_a_voicemail_greeting_with_a_beep_gets_the_message_after_the_beep(cloud, caller_bot, lines):
    caller_bot.voicemail_message = "Hi {{name}}, this is the front desk. Please call us back. Goodbye."
    caller_bot.save()
    cloud.callee(CALLEE, Voicemail(str(lines["voicemail"])))
    call = outbound_calls.request_call(bot=caller_bot, to=CALLEE, variables={"name": "Dana"})
    fake = cloud.wait(cloud.wait_for_call(to=CALLEE).sid, 60)
    call = stored(call)
    assert (call.status, call.end_reason) == ("voicemail", "voicemail")
    bot_turns = [turn.text for turn in call.turns.filter(role="bot")]
    assert bot_turns == ["Hi Dana, this is the front desk. Please call us back. Goodbye."]  # never the greeting
    assert fake.beep_ended_at is not None and fake.first_bot_audio > fake.beep_ended_at  # after the beep
    assert call.metrics["voicemail"]["outcome"] == "machine" and call.metrics["voicemail"]["message_after"] == "beep"
    # The bot ended the call after its message: the stream closed and Twilio was told to hang up.
    assert fake.outcome in ("stream-closed", "platform-hung-up")
    assert (f"/2010-04-01/Accounts/ACtest/Calls/{fake.sid}.json", {"Status": "completed"}) in cloud.requests


def test_twilios_own_answering_machine_detection_is_used_where_it_is_on(cloud, caller_bot, lines, settings):
    """DetectMessageEnd: Twilio fetches the answer URL after the machine's greeting and beep
    (AnsweredBy=machine_end_beep); the stream carries only the recording's silence."""
    settings.TWILIO_MACHINE_DETECTION = "DetectMessageEnd"
    caller_bot.voicemail_message = "Hi {{name}}, please call the front desk back."
    caller_bot.save()
    cloud.callee(CALLEE, Voicemail(str(lines["voicemail"])))
    call = outbound_calls.request_call(bot=caller_bot, to=CALLEE, variables={"name": "Dana"})
    fake = cloud.wait(cloud.wait_for_call(to=CALLEE).sid, 60)
    call = stored(call)
    assert fake.params["MachineDetection"] == "DetectMessageEnd" and fake.greeting_before_stream
    assert (call.status, call.metrics["voicemail"]["reason"], call.metrics["voicemail"]["message_after"]) == (
        "voicemail", "provider", "provider")
    assert [turn.text for turn in call.turns.filter(role="bot")] == ["Hi Dana, please call the front desk back."]
