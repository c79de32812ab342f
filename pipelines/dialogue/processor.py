"""ScenarioProcessor: the dialogue engine between the user aggregator and the LLM.

    transport in -> VAD/STT -> user aggregator -> ScenarioProcessor -> LLM -> TTS -> out -> assistant aggregator

When the user's turn ends the aggregator pushes an ``LLMContextFrame``. This
processor reads the latest user message from it and asks the engine:

- scripted reply: the frame stops here (no LLM request); a ``TTSSpeakFrame``
  goes downstream and the text is appended to the context as an assistant
  message at once (the frame carries ``append_to_context=False`` so the
  assistant aggregator does not add it a second time);
- LLM reply: the frame goes on to the LLM, with the knowledge passages put into
  a copy of the context's last user message (the real context keeps the
  caller's words only);
- end_call / transfer: the goodbye is spoken, ``on_end(reply)`` is awaited (a
  transport hook, e.g. a Twilio <Dial> for a transfer) and an ``EndWorkerFrame``
  follows downstream, so queued audio is flushed before the pipeline ends.
  ``end_reason`` and ``transfer_to`` stay on the processor for the recorder.

Keypad entries (``KeypadCollector`` in ``keypad.py``, next to this processor) come in
through ``handle_keys`` and are answered like a scripted turn.

With an LLM that calls tools, ``llm_tools(processor)`` gives the call's
context the bot's HTTP tools plus end_call / transfer_call.

Speculative context frames (``speculation=True``) are dropped: scripted turns
do not need speculation, so run this processor with speculation off.
The engine is synchronous (parsing, a few ms of embedding, an HTTP action);
it runs in a worker thread so the event loop keeps moving audio.
"""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable

from pipecat.adapters.llm.schemas.function_schema import FunctionSchema
from pipecat.adapters.llm.schemas.tools_schema import ToolsSchema
from pipecat.frames.frames import (
    EndWorkerFrame,
    Frame,
    FunctionCallResultProperties,
    LLMContextFrame,
    StartFrame,
    TTSSpeakFrame,
)
from pipecat.processors.aggregators.llm_context import LLMContext, standard_message_text
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

from pipelines.dialogue.engine import DialogueEngine, Reply
from pipelines.dialogue.llm import knowledge_messages, supports_tools
from pipelines.dialogue.reply_guard import ReplyGuard

OnEnd = Callable[[Reply], Awaitable[str | None]]  # may return a last line to say (e.g. a refused transfer)


def latest_user_text(context: LLMContext) -> str | None:
    """The text of the context's last message if it is the user's; None otherwise."""
    messages = context.messages
    if not messages:
        return None
    last = messages[-1]
    if not isinstance(last, dict) or last.get("role") != "user":
        return None
    return standard_message_text(last)


def context_with_passages(context: LLMContext, passages: list[str]) -> LLMContext:
    """A copy of ``context`` whose last user message carries the knowledge passages (after a worked example)."""
    messages = list(context.messages)
    messages[-1] = {**messages[-1], "content": standard_message_text(messages[-1])}
    return LLMContext(messages=knowledge_messages(messages, passages), tools=context.tools,
                      tool_choice=context.tool_choice)


def _model_of(config) -> str:
    if getattr(config, "llm_model", ""):
        return config.llm_model
    from voicebot import llm_endpoint

    return llm_endpoint.default_model()


def engine_for(config, *, embed=None, retrieve=None) -> DialogueEngine:
    """A call's engine on the bundled embedder and the bot's knowledge search (each loaded once per process)."""
    from pipelines.dialogue.embedder import default_embedder
    from pipelines.dialogue.knowledge import default_retriever

    return DialogueEngine(config, embed=embed if embed is not None else default_embedder(),
                          retrieve=retrieve if retrieve is not None else default_retriever(config))


class ScenarioProcessor(FrameProcessor):
    """Give it a ``DialogueEngine``, or the call's ``BotConfig`` (``ScenarioProcessor(config)``).

    ``inject_knowledge=False`` when a knowledge injector further down adds the passages itself.
    The recorder reads ``engine.record_fields()`` (scenario, collected_fields), ``engine.summary()``
    (for metrics) and ``end_reason`` / ``transfer_to`` at hang-up.
    """

    def __init__(self, engine: DialogueEngine | Any, *, speak_greeting: bool = False, on_end: OnEnd | None = None,
                 inject_knowledge: bool = True, offer_tools: bool | None = None, embed=None, retrieve=None,
                 **kwargs):
        super().__init__(**kwargs)
        if not isinstance(engine, DialogueEngine):
            if offer_tools is None:
                offer_tools = supports_tools(_model_of(engine))
            engine = engine_for(engine, embed=embed, retrieve=retrieve)
        self.engine = engine
        self.inject_knowledge = inject_knowledge
        self.offer_tools = bool(offer_tools)
        self.speak_greeting = speak_greeting
        self.on_end = on_end
        self.end_reason = ""
        self.transfer_to = ""
        self.scripted_turns = 0
        self.llm_turns = 0
        self.last_reply: Reply | None = None
        self.caller_words: list[str] = []  # what the caller said so far: facts a reply may repeat
        self._question = ""
        # What each caller turn's reply was based on (``DialogueEngine.explain``: scenario, passages,
        # fallback), with the caller's words: stored in the call's metrics for the call page.
        self.explanations: list[dict] = []
        self._engine_lock = asyncio.Lock()  # a keypad entry and a spoken turn never run the engine at once

    def reply_guard(self) -> ReplyGuard:
        """The check for the LLM reply now being streamed (``GroundingProcessor``)."""
        reply = self.last_reply
        passages = list(reply.documents or reply.passages) if reply is not None else []
        return ReplyGuard(self.engine.config, question=self._question, passages=passages,
                          caller_words=list(self.caller_words), embed=self.engine.matcher.embed,
                          evidence=reply.evidence if reply is not None else "")

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        if isinstance(frame, LLMContextFrame) and direction == FrameDirection.DOWNSTREAM:
            if frame.speculation:
                return
            await self._on_user_turn(frame)
            return
        await self.push_frame(frame, direction)
        if isinstance(frame, StartFrame) and self.speak_greeting:
            greeting = self.engine.start()
            if greeting.text:
                await self._say(greeting.text, None)

    async def _on_user_turn(self, frame: LLMContextFrame):
        text = latest_user_text(frame.context)
        if text is None:
            # Not a caller's turn (e.g. a tool result): the LLM carries on.
            await self.push_frame(frame)
            return
        self.caller_words.append(text)
        self._question = text
        async with self._engine_lock:
            reply = await asyncio.to_thread(self.engine.handle, text)
        self.last_reply = reply
        why = self.engine.explain() if hasattr(self.engine, "explain") else {}
        if why:
            self.explanations.append({"question": text, **why})
        if reply.use_llm:
            self.llm_turns += 1
            if self.offer_tools and not frame.context.tools:
                frame.context.set_tools(llm_tools(self))  # once; the LLM may call them, nothing relies on it
            if reply.passages and self.inject_knowledge:
                frame = LLMContextFrame(context=context_with_passages(frame.context, reply.passages))
            await self.push_frame(frame)
            if reply.then_say:
                # After the LLM's answer (the LLM service handles frames in order), the
                # scenario's question again; the assistant aggregator commits it once spoken.
                await self.push_frame(TTSSpeakFrame(reply.then_say, append_to_context=True))
            return
        self.scripted_turns += 1
        if reply.text:
            await self._say(reply.text, frame.context)
        if reply.end_call:
            await self.finish(reply)

    async def handle_keys(self, digits: str) -> Reply:
        """One keypad entry (``KeypadCollector``): the engine's answer is spoken like a scripted turn
        (the assistant aggregator puts it into the context once spoken); ignored keys say nothing."""
        async with self._engine_lock:
            if self.engine.ended:  # the call is ending already: keys change nothing
                return Reply("", kind="ignored")
            reply = await asyncio.to_thread(self.engine.handle_keys, digits)
        if reply.kind == "ignored":
            return reply
        self.caller_words.append(digits)
        self.last_reply = reply
        self.scripted_turns += 1
        if reply.text:
            await self.push_frame(TTSSpeakFrame(reply.text, append_to_context=True))
        if reply.end_call:
            await self.finish(reply)
        return reply

    async def on_silence(self):
        """Hook for the user aggregator's ``on_user_turn_idle`` (after ``silence_timeout_sec``):
        re-prompt once, then say goodbye and end with reason ``silence``."""
        reply = self.engine.on_silence()
        if reply.text:
            await self.push_frame(TTSSpeakFrame(reply.text, append_to_context=True))
        if reply.end_call:
            await self.finish(reply)

    async def finish(self, reply: Reply):
        """End the call after what is queued has been spoken (end_call, transfer, turn limit)."""
        self.end_reason = reply.end_reason
        self.transfer_to = reply.transfer_to
        # The transport hook may answer with a last line (a transfer the PBX refused).
        if self.on_end is not None and (last_words := await self.on_end(reply)):
            await self.push_frame(TTSSpeakFrame(last_words, append_to_context=True))
        await self.push_frame(EndWorkerFrame(reason=reply.end_reason))

    async def _say(self, text: str, context: LLMContext | None):
        if context is not None:
            context.add_message({"role": "assistant", "content": text})
        await self.push_frame(TTSSpeakFrame(text, append_to_context=False))


def llm_tools(processor: ScenarioProcessor) -> ToolsSchema:
    """The bot's tools and the built-ins as Pipecat function schemas, with handlers.

    Give them to the call's ``LLMContext(tools=...)`` only when the model calls
    tools (``pipelines.dialogue.llm.supports_tools``); nothing depends on it.
    A tool's ``say`` goes back to the LLM as the result, for it to phrase;
    end_call / transfer_call speak the goodbye and end the call themselves.
    """
    engine = processor.engine
    specs = engine.actions.openai_tools(transfer_enabled=bool(getattr(engine.config, "transfer_number", "")))

    async def handler(params):
        reply = await asyncio.to_thread(engine.run_tool, params.function_name, dict(params.arguments or {}))
        if reply.end_call:
            await params.result_callback({"ok": True}, properties=FunctionCallResultProperties(run_llm=False))
            await processor.push_frame(TTSSpeakFrame(reply.text, append_to_context=True))
            await processor.finish(reply)
            return
        ok = reply.action.ok if reply.action is not None else True
        await params.result_callback({"ok": ok, "say": reply.text})

    return ToolsSchema(standard_tools=[
        FunctionSchema(
            name=spec["function"]["name"], description=spec["function"]["description"],
            properties=dict(spec["function"]["parameters"].get("properties") or {}),
            required=list(spec["function"]["parameters"].get("required") or []), handler=handler,
        )
        for spec in specs
    ])
