"""A SIP call's audio as a Pipecat transport, through a PJSIP conference-bridge port.

PJSIP does the telephony audio: RTP, the jitter buffer and packet-loss concealment,
G.711/G.722 decoding and resampling to the bridge's 16 kHz clock. ``CallAudioPort``
is one port on that bridge, connected both ways to the call's stream; ``CallAudio``
holds what passes through it, and is all the transport sees. The bridge's
clock thread pulls a 20 ms frame from it every 20 ms (``onFrameRequested``), which is
what paces the bot's audio, and hands it the caller's 20 ms (``onFrameReceived``).

- Caller -> bot: frames go to the asyncio loop through ``call_soon_threadsafe``.
- Bot -> caller: the output transport appends audio to a small playout buffer and
  waits while more than ``PLAYOUT_AHEAD_SECS`` is queued, so barge-in (``clear()`` on
  an interruption) silences the caller's side within one frame.
"""

from __future__ import annotations

import asyncio
import threading

import pjsua2 as pj
from pipecat.audio.dtmf.types import KeypadEntry
from pipecat.frames.frames import (
    Frame,
    InputAudioRawFrame,
    InputDTMFFrame,
    InterruptionFrame,
    OutputAudioRawFrame,
    OutputDTMFFrame,
    OutputDTMFUrgentFrame,
    StartFrame,
)
from pipecat.processors.frame_processor import FrameDirection
from pipecat.transports.base_output import BaseOutputTransport
from pipecat.transports.base_transport import BaseTransport, TransportParams

from telephony.receiving import ReceivingInputTransport
from telephony.sip.threads import RegisteredOnFree

RATE = 16000  # the conference bridge's clock and the pipeline's rate
FRAME_MS = 20
FRAME_BYTES = RATE * FRAME_MS // 1000 * 2
PLAYOUT_AHEAD_SECS = 0.06  # bot audio queued ahead of the bridge clock (barge-in drops at most this)


def port_format() -> pj.MediaFormatAudio:
    fmt = pj.MediaFormatAudio()
    fmt.type = pj.PJMEDIA_TYPE_AUDIO
    fmt.init(pj.PJMEDIA_FORMAT_PCM, RATE, 1, FRAME_MS * 1000, 16)
    return fmt


class CallAudio:
    """One call's audio between PJSIP's clock thread and the pipeline (no PJSIP object in it)."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self._loop = loop
        self._lock = threading.Lock()
        self._playout = bytearray()
        self.inbound: asyncio.Queue[bytes] = asyncio.Queue()
        self.frames_in = 0
        self.frames_out = 0  # frames of bot audio actually handed to the call
        self.closed = False

    # --- PJSIP's clock thread ---------------------------------------------------------
    def next_frame(self) -> bytes:
        with self._lock:
            chunk = bytes(self._playout[:FRAME_BYTES])
            del self._playout[:FRAME_BYTES]
        if chunk:
            self.frames_out += 1
        return chunk.ljust(FRAME_BYTES, b"\0")

    def received(self, data: bytes) -> None:
        if self.closed:
            return
        self.frames_in += 1
        try:
            self._loop.call_soon_threadsafe(self.inbound.put_nowait, data.ljust(FRAME_BYTES, b"\0")[:FRAME_BYTES])
        except RuntimeError:  # the loop is gone (shutdown)
            self.closed = True

    # --- the asyncio side -------------------------------------------------------------
    def play(self, audio: bytes) -> None:
        with self._lock:
            self._playout += audio

    def queued_secs(self) -> float:
        with self._lock:
            return len(self._playout) / 2 / RATE

    def clear(self) -> None:
        with self._lock:
            self._playout.clear()


class CallAudioPort(RegisteredOnFree, pj.AudioMediaPort):
    """The call's port on PJSIP's conference bridge. Owned by the SIP call alone, and dropped on
    the SIP thread when the call ends (PJSIP must free it before the library goes)."""

    def __init__(self, audio: CallAudio):
        super().__init__()
        self.audio = audio

    def onFrameRequested(self, frame):
        frame.type = pj.PJMEDIA_FRAME_TYPE_AUDIO
        frame.buf = pj.ByteVector(self.audio.next_frame())
        frame.size = FRAME_BYTES

    def onFrameReceived(self, frame):
        audio = frame.type == pj.PJMEDIA_FRAME_TYPE_AUDIO and frame.size
        self.audio.received(bytes(frame.buf) if audio else b"")


class SipInputTransport(ReceivingInputTransport):
    """The caller's audio and DTMF digits into the pipeline."""

    def __init__(self, port: CallAudio, params: TransportParams, **kwargs):
        super().__init__(params, **kwargs)
        self._port = port

    async def receive(self):
        while True:
            audio = await self._port.inbound.get()
            await self.push_audio_frame(InputAudioRawFrame(audio=audio, sample_rate=RATE, num_channels=1))

    async def dtmf(self, digit: str) -> None:
        """A digit the caller pressed (RFC 4733 or SIP INFO, as PJSIP received it)."""
        try:
            entry = KeypadEntry(digit)
        except ValueError:
            return
        await self.push_frame(InputDTMFFrame(button=entry))


class SipOutputTransport(BaseOutputTransport):
    """The bot's audio into the call's bridge port, paced by the bridge clock."""

    def __init__(self, port: CallAudio, params: TransportParams, *, send_dtmf=None, **kwargs):
        super().__init__(params, **kwargs)
        self._port = port
        self._send_dtmf = send_dtmf  # async callable(digits)

    async def start(self, frame: StartFrame):
        await super().start(frame)
        await self.set_transport_ready(frame)

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        if isinstance(frame, InterruptionFrame):  # barge-in: what the caller would still hear goes now
            self._port.clear()
        await super().process_frame(frame, direction)

    async def write_audio_frame(self, frame: OutputAudioRawFrame) -> bool:
        if self._port.closed:
            return False
        self._port.play(frame.audio)
        while self._port.queued_secs() > PLAYOUT_AHEAD_SECS and not self._port.closed:
            await asyncio.sleep(FRAME_MS / 1000 / 2)
        return True

    async def write_dtmf(self, frame: OutputDTMFFrame | OutputDTMFUrgentFrame):
        if self._send_dtmf is not None:
            await self._send_dtmf(str(frame.button.value))


class SipTransport(BaseTransport):
    def __init__(self, port: CallAudio, *, send_dtmf=None, name: str = "sip"):
        super().__init__(name=name)
        params = TransportParams(audio_in_enabled=True, audio_out_enabled=True,
                                 audio_in_sample_rate=RATE, audio_out_sample_rate=RATE)
        self._input = SipInputTransport(port, params, name=f"{name}-in")
        self._output = SipOutputTransport(port, params, send_dtmf=send_dtmf, name=f"{name}-out")

    def input(self) -> SipInputTransport:
        return self._input

    def output(self) -> SipOutputTransport:
        return self._output
