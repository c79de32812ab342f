"""GroundingProcessor: between the LLM and TTS, no sentence is spoken before its facts are checked.

    ... -> brain (ScenarioProcessor) -> LLM -> GroundingProcessor -> TTS -> ...

The LLM's streamed text is held until a sentence ends, checked by this turn's
``ReplyGuard`` (the brain knows the question, the passages and the caller's
words) and passed on, replaced, or dropped. A leading clause with no checkable
fact in it ("Sure, ...") is released at its comma, so the first words are not
delayed by the check. The check itself costs well under a millisecond a
sentence; what a fact-bearing sentence waits for is its own end.
"""

from __future__ import annotations

import re

from pipecat.frames.frames import (
    Frame,
    InterruptionFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

from pipelines.dialogue import grounding

SENTENCE_END = re.compile(r"[.!?](?=\s)|\n")
CLAUSE_END = re.compile(r",(?=\s)")
EARLY_CLAUSE_WORDS = 1  # "Sure," "Yes," "Of course,"


class GroundingProcessor(FrameProcessor):
    """``brain`` is the call's ``ScenarioProcessor``; ``brain.reply_guard()`` gives this turn's guard."""

    def __init__(self, brain, **kwargs):
        super().__init__(**kwargs)
        self._brain = brain
        self._guard = None
        self._buffer = ""
        self._spoke = False
        self.replies: list[dict] = []  # every turn's guard metrics, for the call record

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        if direction != FrameDirection.DOWNSTREAM:
            await self.push_frame(frame, direction)
            return
        if isinstance(frame, LLMFullResponseStartFrame):
            self._start_reply()
            await self.push_frame(frame, direction)
        elif isinstance(frame, LLMTextFrame):
            if self._guard is None:  # text without a start frame (the fallback phrase after a failure)
                self._start_reply()
            self._buffer += frame.text
            await self._release(final=False)
        elif isinstance(frame, LLMFullResponseEndFrame):
            await self._release(final=True)
            self._end_reply()
            await self.push_frame(frame, direction)
        elif isinstance(frame, InterruptionFrame):
            self._buffer = ""
            self._end_reply()
            await self.push_frame(frame, direction)
        else:
            await self.push_frame(frame, direction)

    def _start_reply(self) -> None:
        self._end_reply()
        self._guard = self._brain.reply_guard()
        self._buffer = ""
        self._spoke = False  # only a reply's first words may go ahead of their sentence's check

    def _end_reply(self) -> None:
        if self._guard is not None and self._guard.checked:
            self.replies.append(self._guard.metrics())
        self._guard = None

    async def _release(self, *, final: bool) -> None:
        while True:
            match = SENTENCE_END.search(self._buffer)
            if match is None:
                break
            sentence, self._buffer = self._buffer[:match.end()], self._buffer[match.end():]
            await self._say(self._guard.check(sentence.strip()))
        if not final and self._guard is not None and not self._guard.checked and not self._spoke:
            clause = CLAUSE_END.search(self._buffer)  # the reply's first words, when they hold no fact
            if clause and len(self._buffer[:clause.end()].split()) >= EARLY_CLAUSE_WORDS \
                    and not grounding.facts(self._buffer[:clause.end()]):
                head, self._buffer = self._buffer[:clause.end()], self._buffer[clause.end():]
                await self._say(head.strip())
        if final and self._buffer.strip():
            text, self._buffer = self._buffer.strip(), ""
            await self._say(self._guard.check(text))

    async def _say(self, text: str | None) -> None:
        if text:
            self._spoke = True
            await self.push_frame(LLMTextFrame(text + " "))
