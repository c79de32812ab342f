"""An outbound call's opening: the bot speaks once a person has answered, never into early
media, a ringing line or an answering machine.

``OutboundOpening`` sits between the user aggregator and the conversation brain. The
pipeline starts when the provider's media starts, i.e. once the callee picked up. The
greeting then follows the callee's first words ("Hello?", which the brain never answers:
the greeting is the reply), or ``wait_sec`` of silence from a callee who says nothing. While
the answering-machine verdict (``verdict()``: "human", "machine" or "unknown") is still
open after those first words, the greeting waits for it, at most ``verdict_wait_sec``; a
machine gets no greeting at all (the voicemail message follows its beep instead).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from pipecat.frames.frames import (
    CancelFrame,
    EndFrame,
    Frame,
    LLMContextFrame,
    StartFrame,
    TTSSpeakFrame,
    UserStartedSpeakingFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

VERDICT_POLL_SEC = 0.05


class OutboundOpening(FrameProcessor):
    def __init__(self, greeting: str, *, wait_sec: float = 2.0, verdict: Callable[[], str] = lambda: "human",
                 verdict_wait_sec: float = 4.5, **kwargs):
        super().__init__(**kwargs)
        self.greeting = greeting
        self.wait_sec = wait_sec
        self.verdict = verdict
        self.verdict_wait_sec = verdict_wait_sec
        self.pending = True  # the greeting is still to come
        self.greeted_at: float | None = None
        self.how = ""  # "after the callee's first words", "after silence", "machine: not greeted"
        self._started_at = 0.0
        self._callee_spoke = False
        self._task: asyncio.Task | None = None

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        if isinstance(frame, StartFrame):
            await self.push_frame(frame, direction)
            self._started_at = time.monotonic()
            self._task = self.create_task(self._greet_after_silence(), "outbound-opening")
            return
        if isinstance(frame, (EndFrame, CancelFrame)):
            await self._stop_timer()
        elif isinstance(frame, UserStartedSpeakingFrame):
            self._callee_spoke = True
        elif isinstance(frame, LLMContextFrame) and direction == FrameDirection.DOWNSTREAM and self.pending \
                and self.greeting:
            if not getattr(frame, "speculation", False):
                # The callee's first words: answered by the greeting, not by the brain.
                await self._stop_timer()
                self._task = self.create_task(self._greet_when_decided(), "outbound-opening-verdict")
            return
        await self.push_frame(frame, direction)

    async def _greet_after_silence(self):
        await asyncio.sleep(self.wait_sec)
        if self.pending and not self._callee_spoke:
            await self._greet("after silence")

    async def _greet_when_decided(self):
        deadline = time.monotonic() + self.verdict_wait_sec
        while self.verdict() == "unknown" and time.monotonic() < deadline:
            await asyncio.sleep(VERDICT_POLL_SEC)
        await self._greet("after the callee's first words")

    async def _greet(self, how: str):
        if not self.pending:
            return
        self.pending = False
        if self.verdict() == "machine":
            self.how = "machine: not greeted"
            return
        self.how = how
        self.greeted_at = time.monotonic() - self._started_at
        if self.greeting:
            await self.push_frame(TTSSpeakFrame(self.greeting))

    async def _stop_timer(self):
        if self._task is not None:
            await self.cancel_task(self._task)
            self._task = None

    def summary(self) -> dict:
        return {"greeting": self.how or "not yet", "greeted_at_s": round(self.greeted_at, 2)
                if self.greeted_at is not None else None}
