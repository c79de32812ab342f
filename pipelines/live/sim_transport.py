"""A file-driven transport: the caller is a list of WAV files, played in real time.

Each file is one caller turn, spoken once the bot has finished its previous
reply (the greeting first); between turns the caller sends silence, as a
phone line does. After the last reply the caller hangs up. The exact end of
the caller's speech in each file (last non-silent 10 ms) is reported to the
recorder, so ``v2v_ms`` is measured from the audio itself, not from the VAD.
"""

from __future__ import annotations

import asyncio
import time
import wave
from pathlib import Path

import numpy as np
from loguru import logger
from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    EndWorkerFrame,
    Frame,
    InputAudioRawFrame,
    OutputAudioRawFrame,
    StartFrame,
)
from pipecat.processors.frame_processor import FrameDirection
from pipecat.transports.base_output import BaseOutputTransport
from pipecat.transports.base_transport import BaseTransport, TransportParams

from telephony.receiving import ReceivingInputTransport

RATE = 16000
CHUNK = 320  # 20 ms at 16 kHz


def read_wav_16k(path: str | Path) -> np.ndarray:
    """A WAV file as 16 kHz mono int16 (any rate, mono or stereo, 16-bit)."""
    with wave.open(str(path), "rb") as w:
        if w.getsampwidth() != 2:
            raise ValueError(f"{path}: only 16-bit PCM WAV is supported (got {8 * w.getsampwidth()}-bit)")
        rate, channels = w.getframerate(), w.getnchannels()
        data = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
    if channels > 1:
        data = data.reshape(-1, channels).mean(axis=1).astype(np.int16)
    if rate != RATE:
        n = int(len(data) * RATE / rate)
        data = np.interp(np.linspace(0, len(data) - 1, n), np.arange(len(data)), data).astype(np.int16)
    return data


def speech_end_sample(samples: np.ndarray, threshold: int = 500) -> int:
    """Index just after the last 10 ms window louder than ``threshold`` (peak)."""
    win = RATE // 100
    n = len(samples) // win
    if n == 0:
        return len(samples)
    peaks = np.abs(samples[: n * win].astype(np.int32)).reshape(n, win).max(axis=1)
    loud = np.nonzero(peaks > threshold)[0]
    return int((loud[-1] + 1) * win) if len(loud) else 0


class SimCaller:
    """The caller's side: which file to play next and when the bot has finished."""

    def __init__(self, files: list[str | Path], *, gap_secs: float = 0.6, reply_timeout_secs: float = 20.0,
                 on_speech_end=None):
        self.turns = [read_wav_16k(f) for f in files]
        self.gap_secs = gap_secs
        self.reply_timeout_secs = reply_timeout_secs
        self.on_speech_end = on_speech_end  # called with the monotonic time of the end of speech
        self.on_hangup = None
        self.bot_speaking = False
        self.bot_spoke_since_turn = False
        self.last_bot_stop = None


class SimInputTransport(ReceivingInputTransport):
    def __init__(self, caller: SimCaller, params: TransportParams, **kwargs):
        super().__init__(params, **kwargs)
        self._caller = caller

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        if isinstance(frame, BotStartedSpeakingFrame):
            self._caller.bot_speaking = True
            self._caller.bot_spoke_since_turn = True
        elif isinstance(frame, BotStoppedSpeakingFrame):
            self._caller.bot_speaking = False
            self._caller.last_bot_stop = time.monotonic()
        await super().process_frame(frame, direction)

    async def _send(self, samples: np.ndarray, clock: list[float]):
        for i in range(0, len(samples), CHUNK):
            chunk = samples[i:i + CHUNK]
            if len(chunk) < CHUNK:
                chunk = np.pad(chunk, (0, CHUNK - len(chunk)))
            await self.push_audio_frame(InputAudioRawFrame(audio=chunk.tobytes(), sample_rate=RATE, num_channels=1))
            clock[0] += CHUNK / RATE
            await asyncio.sleep(max(0.0, clock[0] - time.monotonic()))

    async def _wait_for_bot(self, clock: list[float]):
        """Send silence until the bot has spoken and been quiet for gap_secs."""
        silence = np.zeros(CHUNK, dtype=np.int16)
        deadline = time.monotonic() + self._caller.reply_timeout_secs
        while time.monotonic() < deadline:
            c = self._caller
            if c.bot_spoke_since_turn and not c.bot_speaking and c.last_bot_stop \
                    and time.monotonic() - c.last_bot_stop >= c.gap_secs:
                return
            await self._send(silence, clock)
        logger.warning("sim caller: no complete bot reply within %.0fs; going on" % self._caller.reply_timeout_secs)

    async def receive(self):
        clock = [time.monotonic()]
        await self._wait_for_bot(clock)  # the greeting
        for samples in self._caller.turns:
            self._caller.bot_spoke_since_turn = False
            end = speech_end_sample(samples)
            await self._send(samples[:end], clock)
            if self._caller.on_speech_end:
                self._caller.on_speech_end(time.monotonic())
            await self._send(samples[end:], clock)
            await self._wait_for_bot(clock)
        if self._caller.on_hangup:
            self._caller.on_hangup()
        await self.push_frame(EndWorkerFrame(reason="caller_hangup"))


class SimOutputTransport(BaseOutputTransport):
    """Plays the bot's audio at real-time pace into nowhere (the recorder keeps it)."""

    def __init__(self, params: TransportParams, **kwargs):
        super().__init__(params, **kwargs)
        self._play_until = 0.0

    async def start(self, frame: StartFrame):
        await super().start(frame)
        await self.set_transport_ready(frame)

    async def write_audio_frame(self, frame: OutputAudioRawFrame) -> bool:
        now = time.monotonic()
        self._play_until = max(self._play_until, now) + len(frame.audio) / 2 / frame.sample_rate
        await asyncio.sleep(max(0.0, self._play_until - now - 0.02))
        return True


class SimTransport(BaseTransport):
    def __init__(self, caller: SimCaller):
        super().__init__()
        params = TransportParams(audio_in_enabled=True, audio_out_enabled=True,
                                 audio_in_sample_rate=RATE, audio_out_sample_rate=RATE)
        self._input = SimInputTransport(caller, params, name="sim-in")
        self._output = SimOutputTransport(params, name="sim-out")

    def input(self):
        return self._input

    def output(self):
        return self._output
