"""Keypad input (DTMF): the engine's ``handle_keys`` and the live pipeline's ``KeypadCollector``.

The collector runs in a real Pipecat pipeline with the real ScenarioProcessor and engine
(no models: every reply here is scripted); keys go in as the transport pushes them, one
``InputDTMFFrame`` per key.
"""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace

import pytest
from pipecat.audio.dtmf.types import KeypadEntry
from pipecat.frames.frames import (
    EndFrame,
    InputDTMFFrame,
    InterruptionFrame,
    TTSSpeakFrame,
    UserIdleTimeoutUpdateFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.runner import WorkerRunner
from pipecat.pipeline.worker import PipelineWorker
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

from pipelines.dialogue import keys
from pipelines.dialogue.chat import ChatSession
from pipelines.dialogue.engine import NO_SUCH_KEY, NO_TRANSFER, TRANSFERRING, DialogueEngine
from pipelines.dialogue.keypad import KeypadCollector
from pipelines.dialogue.processor import ScenarioProcessor
from voicebot.scenarios import parse_scenarios

from .conftest import fixed_clock

MENU_PROMPT = "Press 1 for a callback, 2 for our opening hours, 0 for a person."
HOURS = "We are open 8 to 6, Monday to Friday."
PHONE_PROMPT = "Please type your phone number and press #."
TOPIC_PROMPT = "Press 1 for sales, 2 for support."


def scenarios(*, at_start=True, phone_timeout=None, phone_required=True):
    phone = {"name": "phone", "prompt": PHONE_PROMPT, "type": "phone", "keypad": True, "required": phone_required}
    if phone_timeout is not None:
        phone["keypad_timeout"] = phone_timeout
    return parse_scenarios([
        {"name": "main_menu", "trigger_keywords": ["menu"],
         "menu": {"at_start": at_start, "prompt": MENU_PROMPT,
                  "keys": {"1": {"scenario": "callback"}, "2": {"say": HOURS}, "0": {"transfer": True}}}},
        {"name": "callback", "trigger_keywords": ["call me back"], "collect_fields": [
            phone,
            {"name": "topic", "prompt": TOPIC_PROMPT, "type": "choice", "options": ["sales", "support"],
             "keypad": True},
            {"name": "note", "prompt": "Anything we should know?", "required": False},
        ]},
    ])[0]


def config(**overrides):
    values = {"scenarios": scenarios(), "greeting": "Hi.", "fallback_phrase": "Sorry?", "max_turns": 20,
              "transfer_number": "", "company_country": "DE", "company_timezone": "Europe/Berlin",
              "use_knowledge": False, "tools": (), "slug": "t"}
    values.update(overrides)
    return SimpleNamespace(**values)


def engine(**overrides) -> DialogueEngine:
    return DialogueEngine(config(**overrides), clock=fixed_clock)


# --- the engine -----------------------------------------------------------------------

def test_typed_digits_fill_a_phone_field_in_e164_and_are_confirmed_as_usual():
    e = engine(scenarios=scenarios(at_start=False))
    assert e.handle("could you call me back?").text == f"Sure. {PHONE_PROMPT}"
    assert e.handle_keys("0301234567").text == TOPIC_PROMPT  # DE: the company's country
    assert e.state()["values"]["phone"] == "+49301234567"
    assert e.handle_keys("2").text == "Anything we should know?"  # key 2: the second choice
    assert e.handle("no").text == "Let me confirm: phone number +49 30 1234567, topic support, note no. Is that right?"
    assert e.handle("yes").text.startswith("Thank you")
    assert e.record_fields() == ("callback", {"phone": "+49301234567", "topic": "support", "note": "no"})


def test_speech_still_answers_a_keypad_field_and_bad_digits_are_asked_again():
    e = engine(scenarios=scenarios(at_start=False))
    e.handle("call me back please")
    assert e.handle_keys("12").text == f"Sorry, that isn't a valid phone number. {PHONE_PROMPT}"
    assert e.handle("it's 030 1234567").text == TOPIC_PROMPT
    assert e.handle_keys("7").text == f"Sorry, that isn't a valid topic. {TOPIC_PROMPT}"  # no seventh topic
    assert e.handle("support").text == "Anything we should know?"
    assert e.state()["values"] == {"phone": "+49301234567", "topic": "support"}


def test_hash_alone_skips_an_optional_keypad_field_and_is_refused_by_a_required_one():
    e = engine(scenarios=scenarios(at_start=False, phone_required=False))
    e.handle("call me back")
    assert e.handle_keys("").text == TOPIC_PROMPT
    assert e.state()["values"] == {"phone": None}
    required = engine(scenarios=scenarios(at_start=False))
    required.handle("call me back")
    assert required.handle_keys("").text.startswith("Sorry, that isn't a valid phone number.")


def test_keys_do_nothing_where_no_field_or_menu_takes_them():
    e = engine(scenarios=scenarios(at_start=False))
    reply = e.handle_keys("5")
    assert (reply.kind, reply.text, e.user_turns) == ("ignored", "", 0)
    assert not e.accepts_keys()
    e.handle("call me back")
    e.handle_keys("0301234567")
    e.handle_keys("1")
    assert e.handle_keys("42").kind == "ignored"  # the free-text note takes no keys
    assert e.state()["field"] == "note"


def test_a_menu_open_from_the_start_picks_by_key_and_a_scenario_closes_it():
    e = engine(transfer_number="+4930999999")
    assert e.accepts_keys() and e.keys_complete("1") and e.keypad_timeout() == keys.DEFAULT_TIMEOUT
    assert e.handle_keys("2").text == HOURS  # the menu stays open
    assert e.handle_keys("7").text == f"{NO_SUCH_KEY} {MENU_PROMPT}"
    assert e.handle("two").text == HOURS  # a key may be said too
    assert e.handle_keys("1").text == f"Sure. {PHONE_PROMPT}"
    assert e.menu is None and e.state()["scenario"] == "callback"
    assert e.handle_keys("0301234567").text == TOPIC_PROMPT  # the keys now answer the field, not the menu
    transfer = engine(transfer_number="+4930999999").handle_keys("0")
    assert (transfer.text, transfer.transfer_to, transfer.end_call) == (TRANSFERRING, "+4930999999", True)
    assert engine().handle_keys("0").text == f"{NO_TRANSFER} {MENU_PROMPT}"


def test_a_menu_scenario_is_opened_by_its_trigger_words():
    e = engine(scenarios=scenarios(at_start=False))
    assert e.handle("what are the menu options?").text == MENU_PROMPT
    assert e.handle_keys("2").text == HOURS


def test_an_entry_that_cannot_go_on_is_answered_at_once():
    e = engine(scenarios=scenarios(phone_timeout=6))
    assert e.keys_complete("1") and not e.keys_complete("5")  # a menu key / no such key: wait
    e.handle_keys("1")
    assert not e.keys_complete("0") and e.keypad_timeout() == 6  # a phone number goes on
    e.handle_keys("0301234567")
    assert e.keys_complete("2") and e.keypad_timeout() == keys.DEFAULT_TIMEOUT  # a one-digit choice


def test_the_open_menu_survives_a_chat_snapshot():
    e = engine(scenarios=scenarios(at_start=False))
    e.handle("menu please")
    again = engine(scenarios=scenarios(at_start=False))
    again.restore(e.snapshot())
    assert again.handle_keys("2").text == HOURS


def test_keys_typed_into_chat_go_through_the_keypad():
    session = ChatSession(config(), use_default_models=False, llm=object(), clock=fixed_clock)
    assert session.send("1#").reply == f"Sure. {PHONE_PROMPT}"
    assert session.send("99*0301234567#").reply == TOPIC_PROMPT
    assert session.engine.state()["values"]["phone"] == "+49301234567"


def test_an_entry_is_the_digits_after_the_last_star():
    assert keys.entry_of("12*34#") == "34"
    assert keys.entry_of("5*") == ""
    assert keys.parse_keys({"type": "number"}, "0042", country="US").value == 42
    assert keys.parse_keys({"type": "text"}, "0042", country="US").spoken == "0 0 4 2"
    assert keys.parse_keys({"type": "phone"}, "0014155550123", country="DE").value == "+14155550123"


# --- the live pipeline ------------------------------------------------------------------

class Sink(FrameProcessor):
    """An end of the test pipeline: keeps what reaches it (and when) from the other end."""

    def __init__(self, direction=FrameDirection.DOWNSTREAM):
        super().__init__()
        self.direction = direction
        self.frames: list[tuple[float, object]] = []
        self.arrived = asyncio.Event()

    async def process_frame(self, frame, direction):
        await super().process_frame(frame, direction)
        if direction == self.direction:
            self.frames.append((time.monotonic(), frame))
            self.arrived.set()
        await self.push_frame(frame, direction)

    def spoken(self) -> list[tuple[float, str]]:
        return [(t, f.text) for t, f in self.frames if isinstance(f, TTSSpeakFrame)]

    async def wait_spoken(self, count: int, timeout: float = 10) -> list[tuple[float, str]]:
        async def enough():
            while len(self.spoken()) < count:
                self.arrived.clear()
                await self.arrived.wait()
        await asyncio.wait_for(enough(), timeout)
        return self.spoken()


class AnsweringScenario(ScenarioProcessor):
    """The real ScenarioProcessor, noting each keypad entry it answered."""

    def __init__(self, engine):
        super().__init__(engine)
        self.answered: list[tuple[str, str]] = []
        self._answer = asyncio.Event()

    async def handle_keys(self, digits):
        reply = await super().handle_keys(digits)
        self.answered.append((digits, reply.kind))
        self._answer.set()
        return reply

    async def wait_answered(self, count: int, timeout: float = 10):
        async def enough():
            while len(self.answered) < count:
                self._answer.clear()
                await self._answer.wait()
        await asyncio.wait_for(enough(), timeout)


async def press_keys(eng: DialogueEngine, script):
    """Run scenario -> collector -> sink as in the call's pipeline; ``script(press, sink, scenario)`` drives it.
    What the collector sends upstream (towards the user aggregator) is kept in ``collector.upstream``."""
    scenario = AnsweringScenario(eng)
    collector = KeypadCollector(scenario)
    collector.upstream = Sink(FrameDirection.UPSTREAM)
    sink = Sink()
    worker = PipelineWorker(Pipeline([collector.upstream, scenario, collector, sink]), cancel_on_idle_timeout=False)

    async def press(typed: str):
        for key in typed:
            await worker.queue_frame(InputDTMFFrame(KeypadEntry(key)))
        return time.monotonic()

    async def drive():
        await asyncio.sleep(0)
        try:
            return await script(press, sink, scenario)
        except Exception as exc:  # noqa: BLE001 - raised once the pipeline has ended
            return exc
        finally:
            await worker.queue_frame(EndFrame())

    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    _, result = await asyncio.gather(runner.run(), drive())
    if isinstance(result, Exception):
        raise result
    return collector, sink, scenario, result


def test_keys_up_to_hash_fill_the_phone_field_in_a_live_pipeline():
    eng = engine(silence_timeout_sec=7)

    async def script(press, sink, _scenario):
        await press("1")  # a menu key: answered without # or a pause
        await sink.wait_spoken(1)
        await press("0301234567#")
        return await sink.wait_spoken(2)

    collector, sink, _scenario, spoken = asyncio.run(press_keys(eng, script))
    assert [text for _, text in spoken] == [f"Sure. {PHONE_PROMPT}", TOPIC_PROMPT]
    assert collector.entries == ["1", "0301234567"]
    assert eng.state()["values"] == {"phone": "+49301234567"}
    # The first key of each entry interrupts the bot, as speech does.
    assert sum(isinstance(f, InterruptionFrame) for _, f in sink.frames) == 2
    # Each of the 12 keys tells the user aggregator the caller is there: its silence timer starts over.
    restarts = [f.timeout for _, f in collector.upstream.frames if isinstance(f, UserIdleTimeoutUpdateFrame)]
    assert restarts == [7] * 12


def test_star_clears_the_entry_and_a_pause_ends_it():
    eng = engine(scenarios=scenarios(phone_timeout=0.5))
    eng.handle_keys("1")

    async def script(press, sink, _scenario):
        last_key = await press("0399*0301234567")  # no "#": the pause ends the entry
        (at, text), = await sink.wait_spoken(1)
        return at - last_key, text

    collector, _sink, _scenario, (waited, text) = asyncio.run(press_keys(eng, script))
    assert text == TOPIC_PROMPT and collector.entries == ["0301234567"]
    assert waited >= 0.5  # not before the field's keypad_timeout
    assert eng.state()["values"] == {"phone": "+49301234567"}


def test_keys_that_do_nothing_neither_interrupt_nor_answer():
    eng = engine(scenarios=scenarios(at_start=False))

    async def script(press, sink, scenario):
        await press("5#")
        await scenario.wait_answered(1)
        eng.handle("menu please")  # now keys do something
        await press("2")
        await sink.wait_spoken(1)

    _collector, sink, scenario, _ = asyncio.run(press_keys(eng, script))
    assert scenario.answered == [("5", "ignored"), ("2", "script")]
    assert eng.user_turns == 2  # "menu please" and key 2
    assert [text for _, text in sink.spoken()] == [HOURS]
    assert sum(isinstance(f, InterruptionFrame) for _, f in sink.frames) == 1  # only for the menu key


@pytest.mark.parametrize("typed, entry", [("12#", "12"), ("1*2#", "2"), ("#", "")])
def test_entry_of_what_was_pressed(typed, entry):
    assert keys.entry_of(typed) == entry
