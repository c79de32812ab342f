"""Engine rules beyond the booking walk-through: transfer, turn limit, cancel, confirmation, optional fields."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from pipelines.dialogue.actions import ActionRunner
from pipelines.dialogue.engine import CANCELLED, GOODBYE, NO_TRANSFER, TRANSFERRING, TURN_LIMIT, DialogueEngine
from voicebot.scenarios import validate_scenarios

from .conftest import fixed_clock

SCENARIOS = validate_scenarios([
    {"name": "callback", "trigger_keywords": ["call me back", "callback"], "confirm": False,
     "collect_fields": [
         {"name": "email", "prompt": "Your e-mail?", "type": "email", "required": False},
         {"name": "phone", "prompt": "Your number?", "type": "phone"},
         {"name": "topic", "prompt": "Is it about sales or support?", "type": "choice",
          "options": ["sales", "support"]},
     ],
     "on_complete": "callback_requested"},
])


def config(**overrides):
    values = dict(scenarios=SCENARIOS, greeting="Hi.", fallback_phrase="Sorry?", max_turns=20, transfer_number="",
                  company_country="DE", company_timezone="Europe/Berlin", use_knowledge=False, tools=(), slug="t")
    values.update(overrides)
    return SimpleNamespace(**values)


def engine(**overrides) -> DialogueEngine:
    return DialogueEngine(config(**overrides), clock=fixed_clock)


def test_transfer_needs_a_number():
    assert engine().handle("can I speak to a human?").text.startswith(NO_TRANSFER)
    reply = engine(transfer_number="+4930123456").handle("put me through to someone please")
    assert (reply.text, reply.transfer_to, reply.end_reason, reply.end_call) == (
        TRANSFERRING, "+4930123456", "transfer", True)


def test_the_turn_limit_ends_the_call():
    e = engine(max_turns=2)
    e.handle("hello")
    e.handle("hello again")
    reply = e.handle("and again")
    assert (reply.text, reply.end_reason, reply.end_call) == (TURN_LIMIT, "max_turns", True)
    assert e.handle("anyone?").end_call


def test_cancel_leaves_the_scenario_and_keeps_nothing_active():
    e = engine()
    e.handle("please call me back")
    assert e.handle("never mind").text == CANCELLED
    assert e.state()["scenario"] is None


def test_optional_fields_are_skipped_after_the_hint_and_phones_read_in_the_company_country():
    e = engine()
    assert e.handle("could you call me back?").text == "Sure. Your e-mail?"
    assert "spell it like anna at example dot com" in e.handle("I don't have one").text
    assert e.handle("still no").text == "Your number?"
    assert e.handle("030 1234567").text == "Is it about sales or support?"
    assert e.state()["values"]["phone"] == "+49301234567"
    reply = e.handle("support please")
    assert reply.text.startswith("Thank you")  # confirm: false, and no tool: noted
    assert e.record_fields() == ("callback", {"email": None, "phone": "+49301234567", "topic": "support"})


def test_a_required_field_failing_three_times_gives_up_with_the_fallback():
    e = engine()
    e.handle("callback please")
    e.handle("anna@example.com")
    for _ in range(2):
        assert e.handle("no idea").text.endswith("Your number?")
    reply = e.handle("no idea")
    assert reply.text == "I'm sorry, I couldn't get your phone number. Sorry?"
    assert e.state()["scenario"] is None and e.record_fields()[1] == {"email": "anna@example.com"}


def test_a_tool_that_requires_confirmation_forces_the_confirmation(receiver):
    tool = SimpleNamespace(name="callback_requested", description="", parameters={}, url=receiver.url,
                           secret="", requires_confirmation=True, speak_response=True, timeout_sec=5)
    e = DialogueEngine(config(tools=(tool,)), actions=ActionRunner([tool]), clock=fixed_clock)
    for text in ("call me back", "anna@example.com", "+49 30 1234567"):
        e.handle(text)
    reply = e.handle("sales")
    assert reply.text.startswith("Let me confirm: email anna at example dot com, phone number +49 30 1234567")
    assert receiver.requests == []
    e.handle("yes")
    assert len(receiver.requests) == 1 and "X-Voicebot-Signature" not in receiver.requests[0]["headers"]


@pytest.mark.parametrize("text", ["goodbye", "bye then", "that's all, thanks"])
def test_goodbye_ends_the_call(text):
    reply = engine().handle(text)
    assert (reply.text, reply.end_reason) == (GOODBYE, "goodbye")


def test_silence_reprompts_once_then_ends_the_call():
    e = engine()
    e.handle("call me back please")
    assert e.on_silence().text == "Are you still there? Your e-mail?"
    e.handle("anna@example.com")  # speaking resets the count
    assert e.on_silence().text == "Are you still there? Your number?"
    reply = e.on_silence()
    assert (reply.end_call, reply.end_reason) == (True, "silence")


def test_a_question_mid_scenario_without_knowledge_is_declined_and_the_field_asked_again():
    e = engine()
    e.handle("call me back")
    reply = e.handle("What are your opening hours?")
    assert reply.scripted and reply.text == "I'm sorry, I can't answer that right now. Your e-mail?"
    assert e.state()["field"] == "email"


BOOKING = validate_scenarios([
    {"name": "booking", "trigger_keywords": ["book"], "confirm": True, "collect_fields": [
        {"name": "date", "prompt": "Which day?", "type": "date"},
        {"name": "time", "prompt": "What time?", "type": "time"}]},
])


def test_a_date_answer_with_a_time_fills_both_but_a_plain_day_number_does_not():
    e = engine(scenarios=BOOKING)
    e.handle("I'd like to book")
    assert e.handle("Friday at 4").text.startswith("Let me confirm: date Friday, November 27, time 4 PM")
    e = engine(scenarios=BOOKING)
    e.handle("I'd like to book")
    assert e.handle("December 5").text == "What time?"


def test_repeating_the_same_value_at_the_confirmation_is_a_yes_not_a_correction():
    e = engine(scenarios=BOOKING)
    for text in ("book", "tomorrow", "at 10"):
        e.handle(text)
    assert e.handle("yes, tomorrow at 10 is perfect").text.startswith("Thank you")


@pytest.mark.parametrize("text, transfers", [
    ("can I speak to a human?", True),
    ("could I talk to the manager", True),
    ("please put me through", True),
    ("can I get a real person", True),
    ("human hair extensions", False),
    ("I'd like to talk about a colour", False),
])
def test_transfer_requests_are_told_from_answers_that_mention_people(text, transfers):
    reply = engine(transfer_number="+4930123456").handle(text)
    assert (reply.kind == "transfer") is transfers
