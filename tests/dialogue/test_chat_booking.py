"""The demo salon bot by text: booking walk-through, paraphrase trigger, knowledge, fallback, storage.

Real embedder (all-MiniLM-L6-v2), real bundled LLM (SmolLM2 on llama.cpp) where the
LLM is meant to answer, a real local HTTP receiver for the booking_created action,
and the real database for the stored chat.
"""

from __future__ import annotations

import json

import httpx
from dataclasses import replace

import pytest

from pipelines.dialogue.chat import ChatSession
from pipelines.dialogue.llm import ChatLLM
from voicebot.models import Call
from voicebot.signing import DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER, verify

from .conftest import RECEIVER_SECRET, fixed_clock

pytestmark = [pytest.mark.django_db, pytest.mark.models]


class RecordingLLM(ChatLLM):
    """The real LLM endpoint, with every request body kept for assertions."""

    def __init__(self, base_url: str, config):
        self.sent: list[dict] = []
        client = httpx.Client(event_hooks={"request": [lambda r: self.sent.append(json.loads(r.content))]})
        # A generous timeout: on a loaded 2-core machine SmolLM2 can take tens of seconds.
        super().__init__(base_url, "smollm2-135m-instruct", system_prompt=config.system_prompt,
                         max_tokens=40, timeout=120, client=client)


@pytest.fixture
def chat(demo_config, embed, salon_knowledge, llm_server):
    llm = RecordingLLM(llm_server, demo_config)
    session = ChatSession(demo_config, embed=embed, retrieve=salon_knowledge, llm=llm, clock=fixed_clock)
    session.start()
    return session


def test_booking_by_text_collects_in_order_reasks_a_bad_phone_honours_a_correction_and_delivers(chat, receiver):
    assert chat.transcript[0]["text"] == "Hello! Elegant beauty salon. How can I help?"
    asked = []

    def say(text):
        turn = chat.send(text)
        asked.append(turn.state["field"])
        return turn

    assert say("Hi, I'd like to book an appointment").reply == "Sure. Which service would you like?"
    assert say("A manicure, please").reply == "Which day?"
    assert say("next Tuesday").reply == "What time?"
    assert say("half past four").reply == "Your phone number for the confirmation?"
    assert asked == ["service", "date", "time", "phone"]

    bad = say("my number is five five five")
    assert bad.state["field"] == "phone" and "phone" not in bad.state["values"]
    assert "for example 212 555 0123" in bad.reply and bad.reply.endswith("Your phone number for the confirmation?")

    confirm = say("two one two, five five five, oh one two three")
    assert confirm.state["awaiting"] == "confirm"
    assert confirm.reply == ("Let me confirm: service manicure, date Tuesday, November 24, time 4:30 PM, "
                             "phone number +1 212-555-0123. Is that right?")

    corrected = say("Actually, make it Wednesday")
    assert corrected.reply.startswith("Got it, date Wednesday, November 25. Let me confirm:")
    assert corrected.state["values"]["date"] == "2026-11-25"
    assert receiver.requests == []  # nothing is delivered before the caller says yes

    done = say("yes, that's right")
    assert done.reply == "You're booked. See you soon!"  # the receiver's `say`
    assert done.state["scenario"] is None and done.state["completed"] == ["booking"]

    assert len(receiver.requests) == 1
    request = receiver.requests[0]
    assert request["path"] == "/bookings"
    assert request["headers"][EVENT_HEADER] == "booking_created"
    assert len(request["headers"][DELIVERY_HEADER]) == 32
    assert verify(RECEIVER_SECRET, request["body"], request["headers"][SIGNATURE_HEADER])
    assert not verify("another-secret", request["body"], request["headers"][SIGNATURE_HEADER])
    payload = json.loads(request["body"])
    assert payload["event"] == "booking_created" and payload["scenario"] == "booking"
    assert payload["fields"] == {"service": "manicure", "date": "2026-11-25", "time": "16:30",
                                 "phone": "+12125550123"}
    assert chat.llm.requests == 0  # every scripted step ran without the LLM

    call = chat.end()
    stored = Call.objects.get(pk=call.pk)
    assert stored.transport == Call.Transport.CHAT and stored.company_id == chat.config.company_id
    assert stored.scenario == "booking"
    assert stored.collected_fields == payload["fields"]
    assert stored.end_reason == "caller_hangup"
    assert stored.metrics["scenario_engine"]["actions"][0]["ok"] is True
    turns = list(stored.turns.values_list("role", "text"))
    assert turns[0] == ("bot", "Hello! Elegant beauty salon. How can I help?")
    assert turns[1] == ("caller", "Hi, I'd like to book an appointment")
    assert len(turns) == 1 + 2 * 8
    assert chat.end().pk == call.pk  # storing again does not duplicate


def test_a_paraphrase_without_keywords_starts_the_booking(chat):
    assert chat.engine.matcher.by_keywords("can I get my nails done Friday?") is None
    turn = chat.send("can I get my nails done Friday?")
    assert turn.state["scenario"] == "booking"
    assert turn.reply == "Sure. Which service would you like?"
    assert turn.state["values"] == {"date": "2026-11-27"}  # "Friday" was already said
    assert chat.send("gel nails").reply == "What time?"  # the date is not asked again


def test_an_off_script_question_is_answered_from_knowledge_by_the_llm(chat):
    chat.engine.answer_style = "generative"  # a bot whose model is trusted to phrase the answer
    turn = chat.send("Do you sell gift cards?")
    assert turn.kind == "knowledge"
    assert turn.state["scenario"] is None
    assert chat.llm.requests == 1
    question = chat.llm.sent[0]["messages"][-1]["content"]
    assert "Gift cards for any amount can be bought at the front desk" in question
    assert "Do you sell gift cards?" in question
    assert turn.reply and turn.reply != chat.config.fallback_phrase


def test_with_the_bundled_model_the_answer_is_the_documents_own_words(chat):
    assert chat.engine.answer_style == "extractive"  # automatic, on the bundled SmolLM2
    turn = chat.send("Do you sell gift cards?")
    assert turn.kind == "knowledge" and chat.llm.requests == 0
    assert "Gift cards for any amount can be bought at the front desk or by phone" in turn.reply


def test_a_question_the_documents_do_not_answer_gets_an_honest_dont_know(chat):
    turn = chat.send("Do you offer tattoo removal?")
    assert turn.reply.startswith("I'm sorry, I don't have that information.") and chat.llm.requests == 0


def test_nonsense_gets_the_fallback_without_asking_the_llm(chat):
    turn = chat.send("blorp zanzibar quux")
    assert turn.reply == chat.config.fallback_phrase
    assert turn.kind == "fallback"
    assert chat.llm.requests == 0


def test_the_llm_being_down_gives_the_fallback(demo_config, embed, salon_knowledge):
    dead = ChatLLM("http://127.0.0.1:9/v1", "smollm2-135m-instruct", timeout=2)
    session = ChatSession(replace(demo_config, answer_style="generative"), embed=embed, retrieve=salon_knowledge,
                          llm=dead, clock=fixed_clock)
    assert session.send("Do you sell gift cards?").reply == demo_config.fallback_phrase


def test_a_correction_while_another_field_is_asked(chat):
    for text in ("I want to book", "a pedicure", "Friday", "at 10"):
        chat.send(text)
    turn = chat.send("sorry, the time should be half past two")
    assert turn.reply == "Got it, time 2:30 PM. Your phone number for the confirmation?"
    assert turn.state["values"]["time"] == "14:30" and turn.state["field"] == "phone"


def test_no_at_the_confirmation_asks_what_to_change(chat):
    for text in ("book me in", "haircut", "tomorrow", "noon", "212 555 0123"):
        chat.send(text)
    assert chat.send("no").reply == "What should I change: service, date, time, phone number?"
    turn = chat.send("the service is a balayage")
    assert turn.state["values"]["service"] == "balayage"
    assert turn.state["awaiting"] == "confirm"


def test_the_action_failing_is_said_and_logged(chat, receiver):
    receiver.status = 500
    for text in ("book", "haircut", "tomorrow", "noon", "212 555 0123"):
        chat.send(text)
    turn = chat.send("yes")
    assert "A colleague will confirm it" in turn.reply
    record = chat.record()
    assert record.metrics["scenario_engine"]["actions"][0]["status"] == 500
    assert record.collected_fields["phone"] == "+12125550123"


def test_goodbye_ends_and_the_session_survives_a_snapshot(chat, demo_config, embed, salon_knowledge):
    chat.send("I'd like an appointment")
    chat.send("manicure")
    restored = ChatSession.from_snapshot(demo_config, json.loads(json.dumps(chat.snapshot())), embed=embed,
                                         retrieve=salon_knowledge, llm=chat.llm, clock=fixed_clock)
    assert restored.engine.state()["field"] == "date"
    assert restored.send("Saturday").reply == "What time?"
    turn = restored.send("goodbye")
    assert turn.ended and turn.state["end_reason"] == "goodbye"
    assert restored.record().end_reason == "goodbye"
    assert restored.record().collected_fields == {"service": "manicure", "date": "2026-11-28"}
