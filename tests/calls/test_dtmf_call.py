"""Keypad input on a live Twilio call: the caller's keys pick the menu option and fill the phone field.

A Media Streams client plays the caller against the real runner, models and pipeline; its
keys go in as Twilio sends them (``dtmf`` events), which Pipecat's Twilio serializer turns
into ``InputDTMFFrame``s for the KeypadCollector.
"""

import asyncio

import pytest

from pipelines.live.twilio_caller import TwilioCaller
from tests.calls.conftest import TWILIO_TOKEN, wait_for_call
from tests.conftest import make_desk_bot
from voicebot.scenarios import validate_scenarios

pytestmark = [pytest.mark.models, pytest.mark.django_db(transaction=True)]

SCENARIOS = """
- name: main_menu
  menu:
    at_start: true
    prompt: "Press 1 for a callback."
    keys:
      "1": {scenario: callback}
- name: callback
  confirm: false
  collect_fields:
    - {name: phone, prompt: "Please type your phone number and press the hash key.", type: phone, keypad: true}
"""


@pytest.fixture
def desk_bot(company_a):  # the desk_number fixture's bot: Alpha Dental (DE), with a keypad menu
    return make_desk_bot(company_a, greeting="Hello, Alpha Dental. Press 1 for a callback.",
                         scenarios=validate_scenarios(SCENARIOS))


def test_keypad_digits_fill_a_phone_field_on_a_twilio_call(runner, desk_number, fake_twilio, queued):
    base, _hub = runner

    async def conversation():
        caller = await TwilioCaller.dial(base, to=desk_number.number, auth_token=TWILIO_TOKEN)
        assert await caller.wait_bot_done(), "no greeting"
        pressed = await caller.press("1")
        assert await caller.wait_bot_done(since=pressed), "no answer to key 1"
        pressed = await caller.press("0301234567#")
        assert await caller.wait_bot_done(since=pressed), "no answer to the phone number"
        await caller.hang_up()
        return caller

    caller = asyncio.run(conversation())
    call = wait_for_call(caller.call_sid)
    turns = [(t.role, t.text) for t in call.turns.order_by("index")]
    assert call.scenario == "callback", turns
    assert call.collected_fields == {"phone": "+49301234567"}, turns  # E.164 in the company's country
    assert call.metrics["scenario_engine"]["completed"] == ["callback"]
    assert call.metrics["dtmf"] == "10301234567#"
    assert ("caller", "[DTMF 1]") in turns and ("caller", "[DTMF 0301234567#]") in turns, turns
    after_number = turns[turns.index(("caller", "[DTMF 0301234567#]")) + 1]
    assert after_number[0] == "bot" and after_number[1].startswith("Thank you"), turns
