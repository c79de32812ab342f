"""ScenarioProcessor inside a real Pipecat pipeline: frames in, frames out.

The pipeline is the call's core with real Pipecat parts: the user aggregator
(``LLMContextAggregatorPair``; turns start on a transcription and end 0.2 s after
it) -> ScenarioProcessor -> the OpenAI-compatible LLM service (``OLLamaLLMService``
on the bundled SmolLM2 server) -> a sink -> the assistant aggregator. Each caller
turn goes in as a final TranscriptionFrame, as STT would push it. Scripted turns
must come out as TTSSpeakFrames with no LLM response at all; a question must reach
the LLM with the knowledge passages.
(The full simulated call with STT/TTS is the pipeline factory's test.)
"""

from __future__ import annotations

import asyncio

import pytest
from pipecat.frames.frames import (
    EndFrame,
    EndWorkerFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    TranscriptionFrame,
    TTSSpeakFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.runner import WorkerRunner
from pipecat.pipeline.worker import PipelineWorker
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import LLMContextAggregatorPair, LLMUserAggregatorParams
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.services.ollama.llm import OLLamaLLMService
from pipecat.turns.user_start.transcription_user_turn_start_strategy import TranscriptionUserTurnStartStrategy
from pipecat.turns.user_stop.speech_timeout_user_turn_stop_strategy import SpeechTimeoutUserTurnStopStrategy
from pipecat.turns.user_turn_strategies import UserTurnStrategies
from pipecat.utils.time import time_now_iso8601

from pipelines.dialogue.engine import DialogueEngine
from pipelines.dialogue.llm import ANSWER_EXAMPLE
from pipelines.dialogue.processor import ScenarioProcessor, context_with_passages

from .conftest import fixed_clock

pytestmark = [pytest.mark.django_db, pytest.mark.models]


class Collector(FrameProcessor):
    """The sink: keeps every downstream frame, passes everything on."""

    def __init__(self):
        super().__init__()
        self.frames: list = []
        self.arrived = asyncio.Event()

    async def process_frame(self, frame, direction):
        await super().process_frame(frame, direction)
        if direction == FrameDirection.DOWNSTREAM:
            self.frames.append(frame)
            self.arrived.set()
        await self.push_frame(frame, direction)


async def converse(processor: ScenarioProcessor, llm_url: str, utterances: list[str]):
    """Send each utterance as a finished user turn; return (frames per turn, context, ended)."""
    llm = OLLamaLLMService(base_url=llm_url, settings=OLLamaLLMService.Settings(
        model="smollm2-135m-instruct", max_tokens=30, system_instruction="You are a salon receptionist."))
    sink = Collector()
    context = LLMContext()
    aggregators = LLMContextAggregatorPair(context, user_params=LLMUserAggregatorParams(
        user_turn_strategies=UserTurnStrategies(start=[TranscriptionUserTurnStartStrategy()],
                                                stop=[SpeechTimeoutUserTurnStopStrategy(user_speech_timeout=0.2)])))
    worker = PipelineWorker(Pipeline([aggregators.user(), processor, llm, sink, aggregators.assistant()]),
                            cancel_on_idle_timeout=False)
    per_turn: list[list] = []
    ended = asyncio.Event()

    @worker.event_handler("on_pipeline_finished")
    async def _finished(worker, frame):
        ended.set()

    async def talk():
        await asyncio.sleep(0.2)
        for text in utterances:
            start = len(sink.frames)
            await worker.queue_frame(TranscriptionFrame(text, "caller", time_now_iso8601(), finalized=True))
            while True:  # one reply: a spoken script, or a whole LLM response
                await asyncio.wait_for(sink.arrived.wait(), timeout=120)
                sink.arrived.clear()
                got = sink.frames[start:]
                if any(isinstance(f, (LLMFullResponseEndFrame, EndWorkerFrame, EndFrame)) for f in got) or (
                        any(isinstance(f, TTSSpeakFrame) for f in got)
                        and not any(isinstance(f, LLMFullResponseStartFrame) for f in got)):
                    break
            await asyncio.sleep(0.05)  # let a trailing EndWorkerFrame arrive
            per_turn.append(sink.frames[start:])
            if ended.is_set() or any(isinstance(f, EndWorkerFrame) for f in per_turn[-1]):
                break
        if not ended.is_set():
            await worker.queue_frame(EndFrame())

    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    await asyncio.gather(runner.run(), talk())
    return per_turn, context


def spoken(frames) -> list[str]:
    return [f.text for f in frames if isinstance(f, TTSSpeakFrame)]


def llm_ran(frames) -> bool:
    return any(isinstance(f, (LLMFullResponseStartFrame, LLMTextFrame)) for f in frames)


def test_scripted_turns_are_spoken_without_the_llm_and_a_question_reaches_it_with_knowledge(
        demo_config, embed, salon_knowledge, llm_server, receiver):
    engine = DialogueEngine(demo_config, embed=embed, retrieve=salon_knowledge, clock=fixed_clock,
                            answer_style="generative")
    processor = ScenarioProcessor(engine)
    turns, context = asyncio.run(converse(processor, llm_server, [
        "can I get my nails done Friday?",
        "What does a manicure cost?",
        "a manicure please",
        "half past four",
        "five five five",
        "two one two five five five oh one two three",
        "yes",
    ]))
    scripted = [turns[0], *turns[2:]]
    assert [spoken(t) for t in scripted] == [
        ["Sure. Which service would you like?"],
        ["What time?"],
        ["Your phone number for the confirmation?"],
        ["Sorry, that doesn't sound like a valid phone number. Please say the whole number with the area code, "
         "for example 212 555 0123. Your phone number for the confirmation?"],
        ["Let me confirm: service manicure, date Friday, November 27, time 4:30 PM, "
         "phone number +1 212-555-0123. Is that right?"],
        ["You're booked. See you soon!"],
    ]
    assert not any(llm_ran(t) for t in scripted)  # no LLM request for any scripted step
    assert processor.scripted_turns == 6

    # The question asked mid-booking went to the LLM with the price passage; then the
    # scenario's question again, after the LLM's answer.
    question_turn = turns[1]
    assert llm_ran(question_turn)
    answer = "".join(f.text for f in question_turn if isinstance(f, LLMTextFrame)).strip()
    assert answer
    kinds = [type(f) for f in question_turn]
    assert kinds.index(LLMFullResponseEndFrame) < kinds.index(TTSSpeakFrame)
    assert spoken(question_turn) == ["Which service would you like?"]
    assert processor.llm_turns == 1 and processor.last_reply is not None
    assert engine.state()["completed"] == ["booking"]

    # History: scripted replies and the LLM's answer are in the context; the passages are not.
    messages = context.messages
    assert messages[:3] == [
        {"role": "user", "content": "can I get my nails done Friday?"},
        {"role": "assistant", "content": "Sure. Which service would you like?"},
        {"role": "user", "content": "What does a manicure cost?"},
    ]
    assert messages[3]["role"] == "assistant" and messages[3]["content"].strip() == answer
    assert not any("Facts from the company" in str(m.get("content")) for m in messages)

    assert len(receiver.requests) == 1
    assert engine.record_fields() == ("booking", {"date": "2026-11-27", "service": "manicure", "time": "16:30",
                                                  "phone": "+12125550123"})


def test_knowledge_goes_into_a_copy_of_the_last_user_message_after_the_worked_example():
    system = {"role": "system", "content": "You are the receptionist."}
    context = LLMContext(messages=[system, {"role": "user", "content": "Do you sell gift cards?"}])
    copy = context_with_passages(context, ["Gift cards are sold at the front desk."])
    assert copy.messages[0] == system and copy.messages[1:3] == list(ANSWER_EXAMPLE)
    assert "Gift cards are sold at the front desk." in copy.messages[-1]["content"]
    assert "Do you sell gift cards?" in copy.messages[-1]["content"]
    assert context.messages == [system, {"role": "user", "content": "Do you sell gift cards?"}]


def test_goodbye_speaks_then_ends_the_pipeline_with_the_reason(demo_config, embed, salon_knowledge):
    engine = DialogueEngine(demo_config, embed=embed, retrieve=salon_knowledge, clock=fixed_clock)
    ended_with = []

    async def on_end(reply):
        ended_with.append(reply.end_reason)

    processor = ScenarioProcessor(engine, on_end=on_end)
    # No LLM is needed: point the service at a closed port; it must never be asked.
    turns, _ = asyncio.run(converse(processor, "http://127.0.0.1:9/v1", ["I want to book", "bye for now"]))
    assert spoken(turns[1]) == ["Thank you for calling. Goodbye!"]
    kinds = [type(f) for f in turns[1]]
    assert kinds.index(TTSSpeakFrame) < kinds.index(EndWorkerFrame)
    assert processor.end_reason == "goodbye" and ended_with == ["goodbye"]


def test_llm_tool_calls_reach_the_bot_s_http_tool_signed(demo_bot, embed, receiver):
    """The glue for LLMs that call tools: the handler posts the arguments and hands back `say`."""
    import json
    from types import SimpleNamespace

    from pipelines.config import BotConfig
    from pipelines.dialogue.processor import llm_tools
    from voicebot.models import BotTool
    from voicebot.signing import verify

    BotTool.objects.create(bot=demo_bot, name="check_availability", description="Free slots on a day.",
                           url=receiver.url + "/slots", secret="tool-secret",
                           parameters={"type": "object", "properties": {"date": {"type": "string"}},
                                       "required": ["date"]})
    config = BotConfig.for_slug(demo_bot.slug)
    processor = ScenarioProcessor(DialogueEngine(config, embed=embed, clock=fixed_clock))
    tools = {t.name: t for t in llm_tools(processor).standard_tools}
    assert set(tools) == {"booking_created", "check_availability", "end_call"}  # no transfer number: no transfer
    assert tools["check_availability"].required == ["date"]

    receiver.answer = {"say": "We have 10 am and 2 pm free."}
    results = []

    async def result_callback(result, properties=None):
        results.append(result)

    params = SimpleNamespace(function_name="check_availability", arguments={"date": "2026-11-27"},
                             result_callback=result_callback)
    asyncio.run(tools["check_availability"].handler(params))
    assert results == [{"ok": True, "say": "We have 10 am and 2 pm free."}]
    request = receiver.requests[0]
    assert request["headers"]["X-Voicebot-Event"] == "tool.check_availability"
    assert json.loads(request["body"])["arguments"] == {"date": "2026-11-27"}
    assert verify("tool-secret", request["body"], request["headers"]["X-Voicebot-Signature"])


def test_the_factory_can_build_it_from_the_bot_config(demo_config):
    processor = ScenarioProcessor(demo_config)
    assert processor.engine.config is demo_config
    assert processor.engine.matcher.embed is not None  # the bundled MiniLM, for paraphrases
    assert processor.engine.handle("can I get my nails done Friday?").text == "Sure. Which service would you like?"


def test_tools_are_offered_only_to_models_that_call_tools(demo_config):
    from dataclasses import replace

    assert ScenarioProcessor(replace(demo_config, llm_model="qwen2.5:7b")).offer_tools
    assert ScenarioProcessor(replace(demo_config, llm_model="llama3.1:8b")).offer_tools
    assert not ScenarioProcessor(replace(demo_config, llm_model="smollm2-135m-instruct")).offer_tools
