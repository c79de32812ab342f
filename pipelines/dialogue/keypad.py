"""KeypadCollector: the caller's keys (``InputDTMFFrame``) gathered into keypad entries.

    transport in -> ... -> user aggregator -> ScenarioProcessor -> KeypadCollector -> LLM -> ...

(anywhere downstream of ``transport.input()`` works: it only passes frames on, and its
entries are answered by the ScenarioProcessor, which pushes the reply from its own place).

Every provider whose transport carries DTMF (Twilio, Telnyx, Plivo media streams, SIP
RFC 4733, Asterisk) pushes one ``InputDTMFFrame`` per key from ``transport.input()``.
Keys collect into one entry until ``#``, a pause of the engine's ``keypad_timeout()``,
or a key that can only mean one thing now (a menu key: ``keys_complete``); ``*`` starts
the entry over. The entry goes to ``ScenarioProcessor.handle_keys``, which speaks the
answer. The first key of an entry interrupts the bot, as speech does, when keys do
anything at this point of the call, and every key restarts the caller's silence timer
(a ``UserIdleTimeoutUpdateFrame`` upstream to the user aggregator), so typing a long
number is not met with "Are you still there?". Key frames pass on unchanged (the recorder
writes them into the transcript as ``[DTMF 0301234567#]``).
"""

from __future__ import annotations

import asyncio

from pipecat.frames.frames import CancelFrame, EndFrame, Frame, InputDTMFFrame, UserIdleTimeoutUpdateFrame
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

from pipelines.dialogue.keys import CLEAR_KEY, END_KEY, entry_of


class KeypadCollector(FrameProcessor):
    """``target`` is the call's ``ScenarioProcessor`` (its ``engine`` says how long to wait)."""

    def __init__(self, target, **kwargs):
        super().__init__(**kwargs)
        self.target = target
        self.keys = ""  # the entry being typed, as pressed ("12*34")
        self.entries: list[str] = []  # the entries handed on, for tests and logs
        self._timer: asyncio.Task | None = None

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        if isinstance(frame, InputDTMFFrame) and direction == FrameDirection.DOWNSTREAM:
            await self.push_frame(frame, direction)
            await self._on_key(str(frame.button.value))
            return
        if isinstance(frame, (EndFrame, CancelFrame)):
            await self._stop_timer()
            self.keys = ""
        await self.push_frame(frame, direction)

    async def _on_key(self, key: str):
        engine = self.target.engine
        if silence := getattr(engine.config, "silence_timeout_sec", 0):  # the caller is there: start it over
            await self.push_frame(UserIdleTimeoutUpdateFrame(timeout=silence), FrameDirection.UPSTREAM)
        if not self.keys and engine.accepts_keys():
            await self.broadcast_interruption()  # the caller is answering: stop talking
        self.keys += key
        await self._stop_timer()
        digits = entry_of(self.keys)
        if key == END_KEY or (key != CLEAR_KEY and digits and engine.keys_complete(digits)):
            self._hand_on()
        elif digits:
            self._timer = self.create_task(self._end_after(engine.keypad_timeout()), name="keypad-timeout")
        # "*" with nothing after it: the entry starts over and waits for the next key.

    async def _end_after(self, seconds: float):
        await asyncio.sleep(seconds)  # no key for this long: the entry is complete
        self._timer = None
        self._hand_on()

    def _hand_on(self):
        """The entry is complete: the engine answers it in a task (never blocking key and audio frames)."""
        digits, self.keys = entry_of(self.keys), ""
        self.entries.append(digits)
        self.create_task(self.target.handle_keys(digits), name="keypad-entry")

    async def _stop_timer(self):
        timer, self._timer = self._timer, None
        if timer is not None and timer is not asyncio.current_task():
            await self.cancel_task(timer)
