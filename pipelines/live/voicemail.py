"""Answering-machine detection in the call's own pipeline (works on any SIP trunk).

``VoicemailDetector`` sits right after the transport's input of an outbound
call. While the callee is ``unknown`` it watches the raw audio: a first
greeting longer than ``long_greeting_secs`` without a pause of
``human_silence_secs`` is a machine, a short one followed by that pause is a
human; a beep (``pipelines.live.beep``) is a machine. Its ``transcript_tap()``,
placed after STT, adds voicemail phrases ("leave a message", ...); the
provider's AMD result comes in through ``provider_says_machine()``.

Once ``machine``, the caller's audio is dropped (STT and the user
aggregator's VAD never hear the recording, so the bot does not answer it) and
the tap drops transcripts already on their way; the detector waits for the
beep, else ``silence_after_greeting_secs`` of quiet, at most ``max_wait_secs``,
then fires ``on_leave_message`` once: the integrator speaks the bot's
voicemail message (or hangs up) and ends the call as ``voicemail``.

Times are on the audio clock (seconds of caller audio seen), so decisions do
not depend on how fast frames are delivered; a wall-clock watchdog covers a
transport that stops sending audio. Decided ``human`` (or undecided after
``analysis_secs``), the detector is a pass-through: a type test and a clock
tick per frame (bench/beep_detector.py). Only ``InputAudioRawFrame`` is ever
dropped here (once ``machine``); every other frame passes.

Speech activity is the frame energy above an adaptive floor, computed here:
at this position only raw audio flows (Silero runs in the user aggregator,
downstream, and it would stop hearing anything once the audio is dropped).
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections import deque

import numpy as np
from pipecat.frames.frames import Frame, InputAudioRawFrame, InterimTranscriptionFrame, TranscriptionFrame
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

from pipelines.live.beep import BeepDetector

UNKNOWN, HUMAN, MACHINE = "unknown", "human", "machine"

DEFAULT_PHRASES = (
    "you've reached", "you have reached", "leave a message", "leave your message", "leave me a message", "leave your name",
    "after the tone", "after the beep", "at the tone", "at the beep", "record your message",
    "not available", "unavailable", "can't take your call", "cannot take your call", "can't come to the phone",
    "voicemail", "voice mail", "mailbox",
)
MIN_UTTERANCE_SECS = 0.12  # less is a click or a breath, not a word


def voicemail_phrase(text: str, phrases=DEFAULT_PHRASES) -> str | None:
    """The first voicemail phrase in ``text`` (any case, Whisper's punctuation and curly apostrophes)."""
    words = re.sub(r"[^a-z0-9']+", " ", text.lower().replace("\u2019", "'")).split()
    padded = f" {' '.join(words)} "
    return next((p for p in phrases if f" {p} " in padded), None)


class SpeechEnergy:
    """Someone is talking in this frame: its level is above ``min_dbfs`` and 10 dB above the line's floor.

    The floor is the quietest frame of the last ``window`` frames (speech dips between words,
    noise does not), assumed -60 dBFS until that much audio came, so a greeting that starts
    with the first frame is heard as speech.
    """

    def __init__(self, min_dbfs: float = -45.0, above_floor_db: float = 10.0, window: int = 50):
        self.min_dbfs, self.above_floor_db = min_dbfs, above_floor_db
        self._levels = deque([-60.0] * window, maxlen=window)

    def active(self, samples: np.ndarray) -> bool:
        if not len(samples):
            return False
        x = samples.astype(np.float32)
        db = 10 * math.log10(float(np.dot(x, x)) / len(x) / 32768.0 ** 2 + 1e-12)
        self._levels.append(db)
        return db >= max(self.min_dbfs, min(self._levels) + self.above_floor_db)


class VoicemailDetector(FrameProcessor):
    """Decides machine or human from the callee's first seconds; on a machine, leaves the message after the beep.

    Events (Pipecat event handlers, each run in its own task):
    ``on_machine(detector, reason)``, ``on_human(detector, reason)``, ``on_leave_message(detector)`` (once).
    """

    def __init__(self, *, long_greeting_secs: float = 4.0, human_silence_secs: float = 0.8,
                 silence_after_greeting_secs: float = 2.0, max_wait_secs: float = 30.0,
                 analysis_secs: float = 30.0, phrases=DEFAULT_PHRASES, **kwargs):
        super().__init__(**kwargs)
        self.long_greeting_secs = long_greeting_secs
        self.human_silence_secs = human_silence_secs
        self.silence_after_greeting_secs = silence_after_greeting_secs
        self.max_wait_secs = max_wait_secs
        self.analysis_secs = analysis_secs
        self.phrases = tuple(phrases)
        self.outcome = UNKNOWN
        self.reason = ""
        self.decided_at: float | None = None
        self.beep_at: float | None = None
        self.message_at: float | None = None
        self.message_after = ""  # what released the message: beep, silence, no audio, timeout, provider
        self._listening = True  # analysing audio (unknown, or a machine before its message)
        self._now = 0.0  # the audio clock: seconds of caller audio seen
        self._beep: BeepDetector | None = None
        self._beep_offset = 0.0
        self._energy = SpeechEnergy()
        self._run_start: float | None = None  # the current greeting's first active frame
        self._run_speech = 0.0
        self._last_active: float | None = None
        self._last_audio_wall = time.monotonic()
        self._watchdog: asyncio.Task | None = None
        self._tap: VoicemailTranscriptTap | None = None
        for event in ("on_machine", "on_human", "on_leave_message"):
            self._register_event_handler(event)

    @property
    def result(self) -> dict:
        """The decision and its timings (audio-clock seconds since the callee's first audio), for the call record."""
        def r(x):
            return None if x is None else round(x, 3)
        return {"outcome": self.outcome, "reason": self.reason, "decided_at_s": r(self.decided_at),
                "beep_at_s": r(self.beep_at), "message_at_s": r(self.message_at), "message_after": self.message_after}

    def transcript_tap(self) -> VoicemailTranscriptTap:
        """The processor to place after STT: it reads phrases and drops a machine's transcripts."""
        if self._tap is None:
            self._tap = VoicemailTranscriptTap(self)
        return self._tap

    async def provider_says_machine(self, *, message_ready: bool = False) -> None:
        """The provider's AMD heard a machine; ``message_ready`` when it also heard the greeting end (beep).

        It overrides a ``human`` read from timing alone (a greeting that paused after its
        first sentence): listening starts again, for the beep or the silence.
        """
        if self.outcome != MACHINE:
            if not self._listening:  # decided human, or stopped analysing: hear afresh from here
                self._listening, self._beep, self._last_active = True, None, None
            await self._decide_machine("provider")
        if message_ready and self.outcome == MACHINE:
            await self._leave_message("provider")

    async def provider_says_human(self) -> None:
        if self.outcome == UNKNOWN:
            await self._decide_human("provider")

    async def hear_text(self, text: str) -> None:
        """A transcript of the callee (from the tap, or a frame passing here)."""
        if self.outcome == UNKNOWN and (phrase := voicemail_phrase(text, self.phrases)):
            await self._decide_machine(f"phrase: {phrase}")

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        if isinstance(frame, InputAudioRawFrame):
            if self._listening:
                await self._hear_audio(frame)
            else:
                self._now += frame.num_frames / frame.sample_rate  # the clock runs on, for a late verdict
            if self.outcome == MACHINE:
                return  # the recording must reach neither STT nor turn-taking
        elif isinstance(frame, (TranscriptionFrame, InterimTranscriptionFrame)):
            await self.hear_text(frame.text)
            if self.outcome == MACHINE:
                return
        await self.push_frame(frame, direction)

    async def cleanup(self):
        await super().cleanup()
        await self._stop_watchdog()

    async def _hear_audio(self, frame: InputAudioRawFrame) -> None:
        samples = np.frombuffer(frame.audio, dtype=np.int16)
        if frame.num_channels > 1:
            samples = samples[::frame.num_channels]
        if self._beep is None or self._beep.sample_rate != frame.sample_rate:
            self._beep, self._beep_offset = BeepDetector(frame.sample_rate), self._now
        start = self._now
        self._now += len(samples) / frame.sample_rate
        self._last_audio_wall = time.monotonic()
        beep_end = self._beep.feed(samples.tobytes() if frame.num_channels > 1 else frame.audio)
        active = self._energy.active(samples)
        if active:
            self._last_active = self._now
        if beep_end is not None:
            await self._heard_beep(self._beep_offset + beep_end)
        elif self.outcome == UNKNOWN:
            await self._judge_greeting(active, start)
        elif self.outcome == MACHINE:
            quiet_since = self.decided_at if self._last_active is None else self._last_active
            if self._now - quiet_since >= self.silence_after_greeting_secs:
                await self._leave_message("silence")
            elif self._now - self.decided_at >= self.max_wait_secs:
                await self._leave_message("timeout")

    async def _judge_greeting(self, active: bool, start: float) -> None:
        if active:
            if self._run_start is None:
                self._run_start, self._run_speech = start, 0.0
            self._run_speech += self._now - start
            if self._now - self._run_start >= self.long_greeting_secs:
                await self._decide_machine("long greeting")
        elif self._run_start is not None and self._now - self._last_active >= self.human_silence_secs:
            if self._run_speech >= MIN_UTTERANCE_SECS:
                await self._decide_human("short greeting")
            else:
                self._run_start = None
        if self.outcome == UNKNOWN and self._now >= self.analysis_secs:
            self._listening = False  # undecided: stop analysing, stay out of the way

    async def _heard_beep(self, at: float) -> None:
        self.beep_at = at
        if self.outcome == UNKNOWN:
            await self._decide_machine("beep")
        if self.outcome == MACHINE:
            await self._leave_message("beep")

    async def _decide_machine(self, reason: str) -> None:
        self.outcome, self.reason, self.decided_at = MACHINE, reason, self._now
        self._last_audio_wall = time.monotonic()
        self._watchdog = self.create_task(self._watch_wall_clock(), name="voicemail-watchdog")
        await self._call_event_handler("on_machine", reason)

    async def _decide_human(self, reason: str) -> None:
        self.outcome, self.reason, self.decided_at = HUMAN, reason, self._now
        self._listening = False
        await self._call_event_handler("on_human", reason)

    async def _leave_message(self, after: str) -> None:
        if self.message_at is not None:
            return
        self.message_at, self.message_after = self._now, after
        self._listening = False  # the audio stays dropped while the message is spoken
        await self._call_event_handler("on_leave_message")
        if self._watchdog is asyncio.current_task():
            self._watchdog = None
        else:
            await self._stop_watchdog()

    async def _watch_wall_clock(self) -> None:
        """Release the message if the audio stops coming, or the cap passes, in real time."""
        started = time.monotonic()
        while self.message_at is None:
            await asyncio.sleep(0.1)
            now = time.monotonic()
            if now - self._last_audio_wall >= self.silence_after_greeting_secs:
                await self._leave_message("no audio")
            elif now - started >= self.max_wait_secs:
                await self._leave_message("timeout")

    async def _stop_watchdog(self) -> None:
        if self._watchdog is not None:
            task, self._watchdog = self._watchdog, None
            await self.cancel_task(task)


class VoicemailTranscriptTap(FrameProcessor):
    """After STT: feeds transcripts to the detector; drops them once it heard a machine (nobody to answer)."""

    def __init__(self, detector: VoicemailDetector, **kwargs):
        super().__init__(**kwargs)
        self._detector = detector

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        if isinstance(frame, (TranscriptionFrame, InterimTranscriptionFrame)):
            await self._detector.hear_text(frame.text)
            if self._detector.outcome == MACHINE:
                return
        await self.push_frame(frame, direction)
