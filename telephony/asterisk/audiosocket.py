"""Asterisk AudioSocket (TCP) as a Pipecat transport, for Asterisk without chan_websocket.

Protocol (docs.asterisk.org, Configuration / Channel Drivers / "AudioSocket";
``include/asterisk/res_audiosocket.h`` and ``res/res_audiosocket.c``): every message is a
3-byte header, a 1-byte kind and a 2-byte big-endian payload length, then the payload.

- ``0x00`` hang up (``00 00 00``; socket closure is also sufficient): both ways.
- ``0x01`` the stream's UUID, 16 bytes binary: Asterisk's first message
  (``ast_audiosocket_init``), the string UUID given to ``AudioSocket(uuid,host:port)`` or
  ``Dial(AudioSocket/host:port/uuid)``.
- ``0x03`` one ASCII DTMF digit: Asterisk -> us only (Asterisk refuses it from us).
- ``0x10`` signed linear 16-bit 8 kHz mono little-endian (the ``AudioSocket()`` app always
  uses it); newer Asterisk (the channel driver with ``c(slinNN)``) also ``0x11`` slin12,
  ``0x12`` slin16, ``0x13`` slin24, ``0x14`` slin32, ``0x15`` slin44, ``0x16`` slin48,
  ``0x17`` slin96, ``0x18`` slin192.
- ``0xff`` an error on Asterisk's side; payload an optional error code.

Asterisk plays what it receives at once and buffers nearly nothing, and it ends the call
after 2 s with no activity either way (``MAX_WAIT_TIMEOUT_MSEC``), so the bot's audio is
sent in 20 ms frames paced by our own clock (320 bytes at 8 kHz), at the rate of the
caller's frames; a barge-in drops what is queued here at once. A zero-length audio
payload is an error to Asterisk, so we never send one.
"""

from __future__ import annotations

import asyncio
import struct
import time
import uuid as uuid_lib
from dataclasses import dataclass

from loguru import logger
from pipecat.audio.dtmf.types import KeypadEntry
from pipecat.audio.utils import create_stream_resampler
from pipecat.frames.frames import (
    CancelFrame,
    EndFrame,
    Frame,
    InputAudioRawFrame,
    InputDTMFFrame,
    InterruptionFrame,
    OutputAudioRawFrame,
    StartFrame,
)
from pipecat.processors.frame_processor import FrameDirection
from pipecat.transports.base_output import BaseOutputTransport
from pipecat.transports.base_transport import BaseTransport, TransportParams

from telephony.receiving import ReceivingInputTransport

KIND_HANGUP, KIND_UUID, KIND_DTMF, KIND_SLIN, KIND_ERROR = 0x00, 0x01, 0x03, 0x10, 0xFF
SLIN_KINDS = {0x10: 8000, 0x11: 12000, 0x12: 16000, 0x13: 24000, 0x14: 32000, 0x15: 44100, 0x16: 48000,
              0x17: 96000, 0x18: 192000}
KNOWN_KINDS = {KIND_HANGUP, KIND_UUID, KIND_DTMF, KIND_ERROR, *SLIN_KINDS}
HEADER = struct.Struct(">BH")
MAX_PAYLOAD = 8192  # 20 ms of slin192 is 7680 bytes; anything bigger is not a frame Asterisk sends
FRAME_MS = 20
PIPELINE_RATE = 16000
PLAYOUT_AHEAD_SECS = 0.06  # bot audio queued ahead of our 20 ms clock (barge-in drops at most this)
HANGUP_FRAME = HEADER.pack(KIND_HANGUP, 0)


class AudioSocketError(Exception):
    """A byte stream that is not AudioSocket framing; the message says what was wrong."""


@dataclass(frozen=True)
class Message:
    kind: int
    payload: bytes

    @property
    def sample_rate(self) -> int | None:
        return SLIN_KINDS.get(self.kind)


def encode(kind: int, payload: bytes = b"") -> bytes:
    if len(payload) > 0xFFFF:
        raise ValueError(f"AudioSocket payloads are at most 65535 bytes (got {len(payload)})")
    return HEADER.pack(kind, len(payload)) + payload


def audio_kind(rate: int) -> int:
    for kind, kind_rate in SLIN_KINDS.items():
        if kind_rate == rate:
            return kind
    raise ValueError(f"no AudioSocket audio kind for {rate} Hz")


def check(kind: int, length: int) -> None:
    """Refuse a header before reading its payload: unknown kind, oversized, or a wrong fixed size."""
    if kind not in KNOWN_KINDS:
        raise AudioSocketError(f"unknown AudioSocket message kind 0x{kind:02x}")
    if length > MAX_PAYLOAD:
        raise AudioSocketError(f"oversized AudioSocket message: kind 0x{kind:02x} with {length} bytes "
                               f"(at most {MAX_PAYLOAD})")
    if kind == KIND_UUID and length != 16:
        raise AudioSocketError(f"an AudioSocket UUID is 16 bytes, got {length}")
    if kind == KIND_DTMF and length != 1:
        raise AudioSocketError(f"an AudioSocket DTMF message is 1 byte, got {length}")


async def read_message(reader: asyncio.StreamReader) -> Message | None:
    """The next message; None when the peer closed the socket between messages.

    Raises ``AudioSocketError`` for a truncated, oversized or unknown frame.
    """
    try:
        header = await reader.readexactly(HEADER.size)
    except asyncio.IncompleteReadError as exc:
        if not exc.partial:
            return None
        raise AudioSocketError(f"truncated AudioSocket header ({len(exc.partial)} of 3 bytes)") from None
    kind, length = HEADER.unpack(header)
    check(kind, length)
    try:
        payload = await reader.readexactly(length) if length else b""
    except asyncio.IncompleteReadError as exc:
        raise AudioSocketError(f"truncated AudioSocket message: kind 0x{kind:02x} announced {length} bytes, "
                               f"got {len(exc.partial)}") from None
    return Message(kind, payload)


def parse(data: bytes) -> list[Message]:
    """Every whole message in ``data`` (tests and tools); raises ``AudioSocketError`` like ``read_message``."""
    out, i = [], 0
    while i < len(data):
        if len(data) - i < HEADER.size:
            raise AudioSocketError(f"truncated AudioSocket header ({len(data) - i} of 3 bytes)")
        kind, length = HEADER.unpack_from(data, i)
        check(kind, length)
        if len(data) - i - HEADER.size < length:
            raise AudioSocketError(f"truncated AudioSocket message: kind 0x{kind:02x} announced {length} bytes, "
                                   f"got {len(data) - i - HEADER.size}")
        out.append(Message(kind, data[i + HEADER.size:i + HEADER.size + length]))
        i += HEADER.size + length
    return out


def read_uuid(message: Message | None) -> uuid_lib.UUID:
    if message is None:
        raise AudioSocketError("the connection closed before its UUID")
    if message.kind != KIND_UUID:
        raise AudioSocketError(f"the first AudioSocket message must be the UUID (0x01), got 0x{message.kind:02x}")
    return uuid_lib.UUID(bytes=message.payload)


class AudioSocketConnection:
    """One AudioSocket TCP connection: the reader loop's messages, our paced writes, hang-up once."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, label: str = "audiosocket"):
        self.reader, self.writer, self.label = reader, writer, label
        self.closed = asyncio.Event()  # the socket is done (either side)
        self.hangup_sent = False
        self.peer_rate = 8000  # the rate of the caller's audio frames: we answer at the same rate

    async def send(self, kind: int, payload: bytes = b"") -> bool:
        if self.closed.is_set() or self.writer.is_closing():
            return False
        try:
            self.writer.write(encode(kind, payload))
            await self.writer.drain()
            return True
        except (ConnectionError, OSError):
            self.closed.set()
            return False

    async def hang_up(self) -> None:
        """Send the hang-up message (once) and close the socket."""
        if not self.hangup_sent and not self.closed.is_set():
            self.hangup_sent = True
            await self.send(KIND_HANGUP)
        await self.close()

    async def close(self) -> None:
        self.closed.set()
        if not self.writer.is_closing():
            self.writer.close()
        try:
            await asyncio.wait_for(self.writer.wait_closed(), 2)
        except (TimeoutError, ConnectionError, OSError):
            pass


class AudioSocketInputTransport(ReceivingInputTransport):
    """Asterisk's messages into the pipeline: audio (resampled to 16 kHz), DTMF; hang-up and errors end it."""

    def __init__(self, connection: AudioSocketConnection, params: TransportParams, *, on_caller_left=None,
                 **kwargs):
        super().__init__(params, **kwargs)
        self._conn = connection
        self._on_caller_left = on_caller_left  # async callable: Asterisk hung up or the socket closed
        self._resampler = create_stream_resampler(clear_after_secs=None)

    async def receive(self):
        conn, why = self._conn, "closed the socket"
        try:
            while True:
                message = await read_message(conn.reader)
                if message is None:
                    break
                if message.kind == KIND_HANGUP:
                    why = "hung up"
                    break
                rate = message.sample_rate
                if rate is not None:
                    if not message.payload:
                        continue
                    conn.peer_rate = rate
                    pcm = message.payload[: len(message.payload) // 2 * 2]
                    if rate != PIPELINE_RATE:
                        pcm = await self._resampler.resample(pcm, rate, PIPELINE_RATE)
                    if pcm:
                        await self.push_audio_frame(InputAudioRawFrame(audio=pcm, sample_rate=PIPELINE_RATE,
                                                                       num_channels=1))
                elif message.kind == KIND_DTMF:
                    digit = message.payload.decode("ascii", "replace")
                    try:
                        await self.push_frame(InputDTMFFrame(button=KeypadEntry(digit)))
                    except ValueError:
                        logger.warning(f"{conn.label}: DTMF {digit!r} is not a keypad key; ignored")
                elif message.kind == KIND_ERROR:
                    code = message.payload.hex() or "none"
                    logger.warning(f"{conn.label}: Asterisk reported an error (code {code})")
                else:  # a second UUID: harmless
                    logger.debug(f"{conn.label}: ignoring AudioSocket message 0x{message.kind:02x}")
        except AudioSocketError as exc:
            why = f"sent a bad frame ({exc})"
            logger.warning(f"{conn.label}: {exc}; hanging up")
            await conn.hang_up()
        except (ConnectionError, OSError) as exc:
            why = f"connection lost ({exc})"
        logger.info(f"{conn.label}: Asterisk {why}")
        conn.closed.set()
        if self._on_caller_left is not None:
            await self._on_caller_left()


class AudioSocketOutputTransport(BaseOutputTransport):
    """The bot's audio to Asterisk in 20 ms frames on our own clock; barge-in empties the queue."""

    def __init__(self, connection: AudioSocketConnection, params: TransportParams, **kwargs):
        super().__init__(params, **kwargs)
        self._conn = connection
        self._resampler = create_stream_resampler(clear_after_secs=None)
        self._playout = bytearray()  # PCM16 at the peer's rate, not yet sent
        self._rate = 8000
        self._clock_task = None
        self.frames_sent = 0

    async def start(self, frame: StartFrame):
        await super().start(frame)
        await self.set_transport_ready(frame)
        if self._clock_task is None:
            self._clock_task = self.create_task(self._clock())

    async def stop(self, frame: EndFrame):
        await super().stop(frame)
        await self._drain()
        await self._stop_clock()

    async def cancel(self, frame: CancelFrame):
        await super().cancel(frame)
        self._playout.clear()
        await self._stop_clock()

    async def _stop_clock(self):
        if self._clock_task:
            await self.cancel_task(self._clock_task)
            self._clock_task = None

    async def _drain(self):
        """At the bot's end of the call, let the last words play before the hang-up."""
        deadline = time.monotonic() + 10
        while self._playout and not self._conn.closed.is_set() and time.monotonic() < deadline:
            await asyncio.sleep(FRAME_MS / 1000)

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        if isinstance(frame, InterruptionFrame):  # barge-in: nothing queued here reaches the caller
            self._playout.clear()
        await super().process_frame(frame, direction)

    def queued_secs(self) -> float:
        return len(self._playout) / 2 / self._rate

    async def write_audio_frame(self, frame: OutputAudioRawFrame) -> bool:
        if self._conn.closed.is_set():
            return False
        rate = self._conn.peer_rate
        if rate != self._rate:
            self._playout.clear()
            self._rate = rate
        pcm = frame.audio
        if frame.sample_rate != rate:
            pcm = await self._resampler.resample(pcm, frame.sample_rate, rate)
        self._playout.extend(pcm)
        while self.queued_secs() > PLAYOUT_AHEAD_SECS and not self._conn.closed.is_set():
            await asyncio.sleep(FRAME_MS / 1000 / 2)
        return True

    async def _clock(self):
        """Every 20 ms, one frame of queued audio (the last one padded with silence)."""
        period = FRAME_MS / 1000
        next_tick = time.monotonic()
        while not self._conn.closed.is_set():
            size = self._rate * FRAME_MS // 1000 * 2
            if self._playout:
                chunk = bytes(self._playout[:size]).ljust(size, b"\0")
                del self._playout[:size]
                if await self._conn.send(audio_kind(self._rate), chunk):
                    self.frames_sent += 1
            next_tick += period
            delay = next_tick - time.monotonic()
            if delay < -0.1:  # fell behind (a stalled loop): restart the clock rather than burst
                next_tick, delay = time.monotonic(), 0
            await asyncio.sleep(max(0.0, delay))


class AudioSocketTransport(BaseTransport):
    def __init__(self, connection: AudioSocketConnection, *, on_caller_left=None, name: str = "audiosocket"):
        super().__init__(name=name)
        params = TransportParams(audio_in_enabled=True, audio_out_enabled=True,
                                 audio_in_sample_rate=PIPELINE_RATE, audio_out_sample_rate=PIPELINE_RATE)
        self.connection = connection
        self._input = AudioSocketInputTransport(connection, params, on_caller_left=on_caller_left,
                                                name=f"{name}-in")
        self._output = AudioSocketOutputTransport(connection, params, name=f"{name}-out")

    def input(self) -> AudioSocketInputTransport:
        return self._input

    def output(self) -> AudioSocketOutputTransport:
        return self._output
