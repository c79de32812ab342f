"""CallGuard and KnowledgeInjector as Pipecat processors (no models needed)."""

import asyncio

from pipecat.frames.frames import EndWorkerFrame, LLMContextFrame, TTSSpeakFrame
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.tests.utils import run_test

from pipelines.dialogue.llm import ANSWER_EXAMPLE
from pipelines.live.conversation import MAX_TURNS_FAREWELL, CallGuard, CallState, KnowledgeInjector
from pipelines.live.text_chunks import FirstClauseTextAggregator


def context_with(*user_lines):
    context = LLMContext()
    for line in user_lines:
        context.add_message({"role": "user", "content": line})
    return context


def test_max_turns_says_goodbye_instead_of_answering():
    state = CallState()
    guard = CallGuard(state=state, max_turns=2)
    frames = [LLMContextFrame(context_with("one")), LLMContextFrame(context_with("two")),
              LLMContextFrame(context_with("three"))]
    down, _up = asyncio.run(run_test(guard, frames_to_send=frames, expected_down_frames=None))
    kinds = [type(f) for f in down]
    assert kinds.count(LLMContextFrame) == 2
    speak = [f for f in down if isinstance(f, TTSSpeakFrame)]
    assert [s.text for s in speak] == [MAX_TURNS_FAREWELL]
    assert any(isinstance(f, EndWorkerFrame) for f in down)
    assert state.end_reason == "max_turns" and state.caller_turns == 3


def test_goodbye_is_detected_and_ordinary_words_are_not():
    state = CallState()
    guard = CallGuard(state=state, max_turns=10)
    frames = [LLMContextFrame(context_with("Is it open by the bay?")), LLMContextFrame(context_with("Thanks, goodbye."))]
    down, _ = asyncio.run(run_test(guard, frames_to_send=frames, expected_down_frames=None))
    assert sum(isinstance(f, LLMContextFrame) for f in down) == 1
    assert state.end_reason == "goodbye"


def test_knowledge_goes_to_the_llm_in_a_copy_of_the_context():
    asked = []

    def retrieve(query):
        asked.append(query)
        return [f"passage about {query}"]

    context = context_with("opening hours?")
    context.add_message({"role": "assistant", "content": "We open at nine."})
    context.add_message({"role": "user", "content": "prices?"})
    down, _ = asyncio.run(run_test(KnowledgeInjector(retrieve=retrieve), frames_to_send=[LLMContextFrame(context)],
                                   expected_down_frames=None))
    sent = [f for f in down if isinstance(f, LLMContextFrame)]
    assert asked == ["prices?"] and len(sent) == 1 and sent[0].context is not context
    messages = sent[0].context.get_messages()
    assert messages[:2] == list(ANSWER_EXAMPLE)  # the worked example comes first (no system prompt here)
    assert messages[2:4] == context.get_messages()[:2]
    assert messages[-1]["role"] == "user" and "- passage about prices?" in messages[-1]["content"]
    assert messages[-1]["content"].endswith("Caller: prices?")
    assert context.get_messages()[-1] == {"role": "user", "content": "prices?"}  # the call's context is untouched


def test_knowledge_failure_answers_without_documents():
    def broken(query):
        raise ConnectionError("vector store down")

    context = context_with("hours?")
    down, _ = asyncio.run(run_test(KnowledgeInjector(retrieve=broken), frames_to_send=[LLMContextFrame(context)],
                                   expected_down_frames=None))
    assert any(isinstance(f, LLMContextFrame) for f in down)
    assert context.get_messages() == [{"role": "user", "content": "hours?"}]


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
