"""Conversation rules as Pipecat processors: goodbye, max turns, transfer, knowledge.

``CallGuard`` sits after the user aggregator (and the scenario slot): each
``LLMContextFrame`` is one finished caller turn. It either lets the turn go on
to the LLM or ends the call itself (farewell, then a graceful end).
``KnowledgeInjector`` sends the LLM a copy of the context with the passages
retrieved for the caller's words.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from typing import Awaitable, Callable

from loguru import logger
from pipecat.frames.frames import EndWorkerFrame, Frame, LLMContextFrame, TTSSpeakFrame
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

from pipelines.dialogue.llm import knowledge_messages

GOODBYE = re.compile(r"\b(good ?bye|bye(?: bye)?|that'?s all|hang up|see you)\b", re.I)
TRANSFER = re.compile(r"\b(transfer|human|real person|an? (?:agent|operator|person)|speak to (?:someone|somebody))\b", re.I)

FAREWELL = "Thank you for calling. Goodbye!"
MAX_TURNS_FAREWELL = "We have reached the end of what I can help with on this call. Thank you for calling. Goodbye!"
SILENCE_REPROMPT = "Are you still there?"
SILENCE_FAREWELL = "I can't hear you, so I'll hang up now. Goodbye!"
TRANSFER_PHRASE = "Please hold, I'm transferring your call."


@dataclass
class CallState:
    """What the call's processors decided; read at hang-up."""

    end_reason: str = "caller_hangup"
    status: str = "completed"
    transferred_to: str = ""
    caller_turns: int = 0
    silence_prompts: int = 0
    ending: bool = False
    caller_left: bool = False
    notes: list = field(default_factory=list)


def last_user_text(context) -> str:
    for message in reversed(context.get_messages()):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):
                return " ".join(part.get("text", "") for part in content if isinstance(part, dict))
            return str(content or "")
    return ""


async def end_call(processor: FrameProcessor, state: CallState, reason: str, farewell: str | None) -> None:
    """Say the farewell (if any) and end the call gracefully (queued audio plays out first)."""
    if state.ending:
        return
    state.ending = True
    state.end_reason = reason
    if farewell:
        await processor.push_frame(TTSSpeakFrame(farewell))
    await processor.push_frame(EndWorkerFrame(reason=reason))


class CallGuard(FrameProcessor):
    """Goodbye detection, max_turns and transfer requests, decided per caller turn."""

    def __init__(self, *, state: CallState, max_turns: int, transfer_number: str = "",
                 transfer: Callable[[str], Awaitable[None]] | None = None, **kwargs):
        super().__init__(**kwargs)
        self._state = state
        self._max_turns = max_turns
        self._transfer_number = transfer_number
        self._transfer = transfer

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        if not isinstance(frame, LLMContextFrame) or direction != FrameDirection.DOWNSTREAM:
            await self.push_frame(frame, direction)
            return
        if self._state.ending:
            return
        self._state.caller_turns += 1
        text = last_user_text(frame.context)
        if GOODBYE.search(text):
            await end_call(self, self._state, "goodbye", FAREWELL)
        elif self._transfer_number and TRANSFER.search(text):
            await self.transfer_call()
        elif self._state.caller_turns > self._max_turns:
            await end_call(self, self._state, "max_turns", MAX_TURNS_FAREWELL)
        else:
            await self.push_frame(frame, direction)

    async def transfer_call(self):
        """Say so, hand the call to the bot's transfer number through the provider, end here."""
        self._state.transferred_to = self._transfer_number
        self._state.status = "transferred"
        await self.push_frame(TTSSpeakFrame(TRANSFER_PHRASE))
        if self._transfer is not None:
            try:
                await self._transfer(self._transfer_number)
            except Exception:  # noqa: BLE001 - the call still ends politely
                logger.exception(f"transfer to {self._transfer_number} failed")
                self._state.status = "completed"
                self._state.notes.append("transfer failed")
        await end_call(self, self._state, "transfer", None)


class KnowledgeInjector(FrameProcessor):
    """Sends the LLM a copy of the context with the passages ``retrieve(query)`` finds for the caller's words.

    The copy is built like the scenario engine's (``knowledge_messages``: a worked
    example after the system prompt, the passages in the caller's last message); the
    call's own context keeps the caller's words only. Nothing changes when retrieval
    finds nothing (or fails).
    """

    def __init__(self, *, retrieve: Callable[[str], list[str]], **kwargs):
        super().__init__(**kwargs)
        self._retrieve = retrieve

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        if isinstance(frame, LLMContextFrame) and direction == FrameDirection.DOWNSTREAM:
            frame = await self._with_knowledge(frame)
        await self.push_frame(frame, direction)

    async def _with_knowledge(self, frame: LLMContextFrame) -> LLMContextFrame:
        messages = frame.context.get_messages()
        if not messages or not isinstance(messages[-1], dict) or messages[-1].get("role") != "user":
            return frame
        query = last_user_text(frame.context)
        try:
            passages = await asyncio.to_thread(self._retrieve, query) if query.strip() else []
        except Exception:  # noqa: BLE001 - answer without knowledge rather than fail the turn
            logger.exception("knowledge retrieval failed")
            passages = []
        if not passages:
            return frame
        messages = [*messages[:-1], {**messages[-1], "content": query}]
        context = LLMContext(messages=knowledge_messages(messages, passages), tools=frame.context.tools,
                             tool_choice=frame.context.tool_choice)
        return LLMContextFrame(context=context)
