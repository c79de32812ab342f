"""One brain: the same caller words end a call and a chat the same way (no audio models needed).

The call side is the pipeline's brain processor (``ScenarioProcessor``, Pipecat frames in and
out); the chat side is ``ChatSession``. Both run the one ``DialogueEngine`` and its rules. (Silence
goes through the same engine in a real call: ``test_call_behaviour``'s silence test.)
"""

import asyncio
from dataclasses import replace

import pytest
from pipecat.frames.frames import EndWorkerFrame, LLMContextFrame, TTSSpeakFrame
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.tests.utils import run_test

from pipelines.config import BotConfig
from pipelines.dialogue.chat import ChatSession
from pipelines.dialogue.llm import LLMAnswer
from pipelines.dialogue.processor import ScenarioProcessor
from pipelines.live.text_chunks import FirstClauseTextAggregator

pytestmark = pytest.mark.django_db


class CannedLLM:
    """The chat's LLM at its interface: every question gets the same short answer."""

    requests = 0

    def answer(self, history, question, passages, tools=None):
        self.requests += 1
        return LLMAnswer(text="We are open from nine.")


def call_side(config, lines):
    """What a call's brain says and decides for these caller turns."""
    processor = ScenarioProcessor(config)
    frames = []
    context = LLMContext()
    for line in lines:
        context = LLMContext(messages=[*context.messages, {"role": "user", "content": line}])
        frames.append(LLMContextFrame(context))
    down, _ = asyncio.run(run_test(processor, frames_to_send=frames, expected_down_frames=None))
    said = [f.text for f in down if isinstance(f, TTSSpeakFrame)]
    to_llm = sum(isinstance(f, LLMContextFrame) for f in down)
    ended = any(isinstance(f, EndWorkerFrame) for f in down)
    return said, to_llm, ended, processor.end_reason


def chat_side(config, lines):
    session = ChatSession(config, llm=CannedLLM(), retrieve=lambda q: [])
    said, reason = [], ""
    for line in lines:
        turn = session.send(line)
        if turn.kind != "llm":
            said.append(turn.reply)
        if turn.ended:
            reason = session.engine.end_reason
            break
    return said, session.llm.requests, bool(reason), reason


@pytest.mark.parametrize("lines,reason", [
    (["What time do you open?", "Thanks, that's all. Bye!"], "goodbye"),
    (["Can I speak to a real person, please?"], "transfer"),
    (["hours?", "prices?", "parking?", "one more thing"], "max_turns"),
])
def test_calls_and_chat_end_identically_on_the_same_words(lines, reason, bot_a):
    config = replace(BotConfig.for_slug(bot_a.slug), max_turns=3, transfer_number="+4930999999")
    call = call_side(config, lines)
    chat = chat_side(config, lines)
    assert call == chat, (call, chat)
    said, _to_llm, ended, end_reason = call
    assert ended and end_reason == reason and said


def test_first_clause_is_released_early_then_sentences():
    async def chunks(tokens):
        aggregator, out = FirstClauseTextAggregator(), []
        for token in tokens:
            async for chunk in aggregator.aggregate(token):
                out.append(chunk.text)
        final = await aggregator.flush()
        return out + ([final.text] if final else [])

    assert asyncio.run(chunks(["Sure", ",", " we", " open", ",", " and", " close", " at", " 6", ".", " Bye", "."])) \
        == ["Sure, we open,", "and close at 6.", "Bye."]
    out = asyncio.run(chunks(["Yes", " we", " open", " at", " eight", " in", " the", " morning", " every", " day", "."]))
    assert out[0] == "Yes we open at" and "".join(out).replace(" ", "") == "Yesweopenateightinthemorningeveryday."
