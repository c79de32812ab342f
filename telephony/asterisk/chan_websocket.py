"""Asterisk's WebSocket channel driver (chan_websocket) as a Pipecat ``FrameSerializer``.

Followed frame by frame from docs.asterisk.org, Configuration / Channel Drivers /
"WebSocket" (``docs/Configuration/Channel-Drivers/WebSocket.md`` in asterisk/documentation)
and from the driver itself (``channels/chan_websocket.c``, Asterisk 20.16 / 22.6 and later):

- Asterisk connects to us as a websocket client (``websocket_client.conf``,
  ``connection_type = per_call_config``, ``protocols = media``), dialled as
  ``Dial(WebSocket/<connection>/c(<codec>)nv(<k=v,...>))``; ``v()`` parameters are appended
  to the URI's query (commas become ``&``; values must already be URI-encoded).
- BINARY frames carry raw media in the channel's codec (``format`` of ``MEDIA_START``):
  Asterisk sends one frame per ptime (160 bytes of ulaw every 20 ms); what we send is cut
  into ``optimal_frame_size`` frames and queued, so we only send whole multiples of it
  (an odd tail "will be dropped") and need not time our packets.
- TEXT frames carry control messages, either the legacy plain-text line or, since
  20.17 / 22.7 / 23.1 (``chan_websocket.conf`` ``control_message_format = json`` or the
  ``f(json)`` dial option), JSON. We answer in the format the ``MEDIA_START`` came in.

  Events (Asterisk -> us), plain text / JSON::

    MEDIA_START connection_id:<id> channel:<name> channel_id:<uniqueid> format:<fmt> optimal_frame_size:<n> ptime:<ms>
    {"event":"MEDIA_START","connection_id":..,"channel":..,"channel_id":..,"format":..,"optimal_frame_size":..,
     "ptime":..,"channel_variables":{..}}
    MEDIA_XOFF / MEDIA_XON                       {"event":"MEDIA_XOFF","channel_id":..}
    DTMF_END digit:<d> channel_id:<uniqueid>     {"event":"DTMF_END","channel_id":..,"digit":"5"}
    MEDIA_BUFFERING_COMPLETED [<id>]             {"event":..,"channel_id":..,"correlation_id":..}
    MEDIA_MARK_PROCESSED [<id>]                  {"event":..,"channel_id":..,"correlation_id":..}
    QUEUE_DRAINED, STATUS k:v..., ERROR channel_id:.. error_text:..

  Commands (us -> Asterisk; case-sensitive; a TEXT message over 128 bytes is ignored)::

    ANSWER, HANGUP, FLUSH_MEDIA, MARK_MEDIA [<id>], START_MEDIA_BUFFERING,
    STOP_MEDIA_BUFFERING [<id>], PAUSE_MEDIA, CONTINUE_MEDIA, GET_STATUS, REPORT_QUEUE_DRAINED
    {"command":"MARK_MEDIA","correlation_id":"<id>"}

- Flow control: at about 900 queued frames (18 s) Asterisk sends ``MEDIA_XOFF``; media
  sent after it "has a high probability of being dropped" until ``MEDIA_XON`` (below
  800). ``FLUSH_MEDIA`` empties the queue (Asterisk then sends ``MEDIA_XON`` on its
  next 20 ms tick if it had sent ``MEDIA_XOFF``).
- Asterisk's own hang-up closes the websocket (``webchan_hangup``: ``ast_websocket_close``
  with the hang-up cause or 1000); there is no hang-up event. Our ``HANGUP`` makes it hang
  up the channel and close the websocket.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field

from loguru import logger
from pipecat.audio.dtmf.types import KeypadEntry
from pipecat.audio.utils import alaw_to_pcm, create_stream_resampler, pcm_to_alaw, pcm_to_ulaw, ulaw_to_pcm
from pipecat.frames.frames import (
    AudioRawFrame,
    CancelFrame,
    EndFrame,
    Frame,
    InputAudioRawFrame,
    InputDTMFFrame,
    InterruptionFrame,
)
from pipecat.processors.frame_processor import FrameProcessorSetup
from pipecat.serializers.base_serializer import FrameSerializer

PLAIN, JSON = "plain-text", "json"
MAX_COMMAND_BYTES = 128  # MAX_TEXT_MESSAGE_LEN in chan_websocket.c
MAX_MESSAGE_BYTES = 65500  # "the maximum websocket message size the underlying websocket code can handle"
XON_WAIT_SECS = 10.0  # how long audio waits for MEDIA_XON before it is dropped (Asterisk would drop it too)
HANGUP_DRAIN_MAX_SECS = 20.0  # Asterisk queues at most ~1000 frames (20 s): never wait longer than that

# Channel formats we convert (Asterisk format name -> sample rate); other codecs are refused.
G711 = {"ulaw": 8000, "alaw": 8000}
SLIN = {"slin": 8000, "slin12": 12000, "slin16": 16000, "slin24": 24000, "slin32": 32000, "slin44": 44100,
        "slin48": 48000, "slin96": 96000, "slin192": 192000}
FORMATS = {**G711, **SLIN}


class ControlError(ValueError):
    """A TEXT frame that is not a chan_websocket control message; the message says why."""


@dataclass(frozen=True)
class Control:
    """One control message (event or command) and the format it was written in."""

    name: str
    fields: dict = field(default_factory=dict)
    style: str = PLAIN
    argument: str = ""  # plain text's bare argument (MEDIA_MARK_PROCESSED <id>)

    @property
    def correlation_id(self) -> str:
        return str(self.fields.get("correlation_id") or self.argument)


def parse_control(text: str) -> Control:
    """Parse an event in either format: JSON (``{"event": ...}``) or the plain-text line.

    Plain text is ``NAME`` followed by space-separated ``key:value`` pairs (values are
    split at the first colon only: a channel name such as ``WebSocket/voicebot/0x7f..``
    has no colon, but be tolerant), or by one bare argument (``MEDIA_MARK_PROCESSED id``).
    """
    text = text.strip()
    if not text:
        raise ControlError("empty control message")
    if text.startswith(("{", "[")):
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ControlError(f"unreadable JSON control message: {exc}") from None
        if not isinstance(data, dict):
            raise ControlError("a JSON control message must be an object")
        name = data.get("event") or data.get("command")
        if not isinstance(name, str) or not name:
            raise ControlError("a JSON control message needs an 'event' (or 'command') name")
        fields = {k: v for k, v in data.items() if k not in ("event", "command")}
        return Control(name, fields, JSON)
    name, _, rest = text.partition(" ")
    if not name.replace("_", "").isalnum():
        raise ControlError(f"not a control message: {text[:40]!r}")
    fields: dict[str, object] = {}
    argument = ""
    for part in rest.split():
        key, colon, value = part.partition(":")
        if colon and key:
            fields[key] = int(value) if value.isdigit() and key in ("optimal_frame_size", "ptime") else value
        elif not argument:
            argument = part
    return Control(name, fields, PLAIN, argument)


def format_command(name: str, style: str, correlation_id: str | None = None) -> str:
    """A command in the style the channel speaks (``MARK_MEDIA id`` / ``{"command":...}``)."""
    if style == JSON:
        data = {"command": name}
        if correlation_id:
            data["correlation_id"] = correlation_id
        text = json.dumps(data, separators=(",", ":"))
    else:
        text = f"{name} {correlation_id}" if correlation_id else name
    if len(text.encode()) > MAX_COMMAND_BYTES:
        raise ValueError(f"{name}: control messages over {MAX_COMMAND_BYTES} bytes are ignored by Asterisk")
    return text


def format_event(name: str, style: str, **fields) -> str:
    """An event as Asterisk writes it (used by the tests' Asterisk and by nobody else)."""
    if style == JSON:
        return json.dumps({"event": name, **fields}, separators=(",", ":"))
    if "correlation_id" in fields:  # MEDIA_MARK_PROCESSED / MEDIA_BUFFERING_COMPLETED [<id>]
        return f"{name} {fields['correlation_id']}" if fields["correlation_id"] else name
    return " ".join([name, *(f"{k}:{v}" for k, v in fields.items())])


@dataclass(frozen=True)
class MediaStart:
    """What ``MEDIA_START`` says about the channel."""

    connection_id: str
    channel: str
    channel_id: str
    format: str
    optimal_frame_size: int
    ptime: int
    style: str
    channel_variables: dict

    @property
    def sample_rate(self) -> int:
        return FORMATS[self.format]

    @classmethod
    def from_control(cls, control: Control) -> MediaStart:
        if control.name != "MEDIA_START":
            raise ControlError(f"expected MEDIA_START first, got {control.name}")
        f = control.fields
        fmt = str(f.get("format") or "")
        if fmt not in FORMATS:
            raise ControlError(f"channel format {fmt or '(none)'!r} is not supported; dial with c(ulaw), c(alaw) "
                               f"or c(slin16) (supported: {', '.join(FORMATS)})")
        try:
            size, ptime = int(f.get("optimal_frame_size") or 0), int(f.get("ptime") or 20)
        except (TypeError, ValueError):
            raise ControlError("MEDIA_START optimal_frame_size/ptime must be numbers") from None
        variables = f.get("channel_variables") if isinstance(f.get("channel_variables"), dict) else {}
        return cls(str(f.get("connection_id") or ""), str(f.get("channel") or ""), str(f.get("channel_id") or ""),
                   fmt, size, ptime, control.style, variables)


class AsteriskFrameSerializer(FrameSerializer):
    """Pipecat frames <-> chan_websocket messages for one channel (after its ``MEDIA_START``).

    In: BINARY media -> ``InputAudioRawFrame`` at the pipeline rate; ``DTMF_END`` ->
    ``InputDTMFFrame``; ``MEDIA_XOFF``/``MEDIA_XON`` hold and release our audio; the other
    events are logged. Out: audio in the channel's codec, cut to whole
    ``optimal_frame_size`` frames; an ``InterruptionFrame`` (barge-in) -> ``FLUSH_MEDIA``;
    the pipeline's ``EndFrame`` (the bot ended the call) -> ``HANGUP`` once the audio
    already queued in Asterisk has played (what we sent, timed at real-time pace);
    ``CancelFrame`` -> ``HANGUP`` at once (unless the caller already left).
    """

    def __init__(self, start: MediaStart, params: FrameSerializer.InputParams | None = None):
        super().__init__(params or FrameSerializer.InputParams(resampler_clear_after_secs=None))
        self.start = start
        self.style = start.style
        self._rate = start.sample_rate
        self._pipeline_rate = 16000
        self._in_resampler = create_stream_resampler(clear_after_secs=self._params.resampler_clear_after_secs)
        self._out_resampler = create_stream_resampler(clear_after_secs=self._params.resampler_clear_after_secs)
        self._pending = bytearray()  # encoded bot audio short of a whole frame
        self._may_send = asyncio.Event()
        self._may_send.set()
        self._flushes = 0
        self.play_until = 0.0  # monotonic time Asterisk will have played what we sent
        self.hangup_sent = False
        self.peer_gone = False  # set by the endpoint when Asterisk closed the websocket
        self.events: list[Control] = []  # control events received, for logs and tests

    async def setup(self, setup: FrameProcessorSetup):
        self._pipeline_rate = setup.audio_in_sample_rate or self._pipeline_rate

    def command(self, name: str, correlation_id: str | None = None) -> str:
        return format_command(name, self.style, correlation_id)

    # --- us -> Asterisk ----------------------------------------------------------------
    async def serialize(self, frame: Frame) -> str | bytes | None:
        if isinstance(frame, InterruptionFrame):
            self._pending.clear()
            self._flushes += 1
            self.play_until = time.monotonic()
            return self.command("FLUSH_MEDIA")
        if isinstance(frame, AudioRawFrame):
            return await self._audio_out(frame)
        if isinstance(frame, EndFrame):
            await self._drain()
            return self._hangup()
        if isinstance(frame, CancelFrame):
            return self._hangup()
        return None

    def _hangup(self) -> str | None:
        if self.hangup_sent or self.peer_gone:
            return None
        self.hangup_sent = True
        return self.command("HANGUP")

    async def _drain(self) -> None:
        """Wait until the audio queued in Asterisk has been played (bounded), so HANGUP cuts nothing."""
        wait = min(self.play_until - time.monotonic(), HANGUP_DRAIN_MAX_SECS)
        if wait > 0 and not self.peer_gone:
            await asyncio.sleep(wait)

    async def encode(self, pcm: bytes, rate: int) -> bytes:
        """PCM16 at ``rate`` -> the channel's codec and rate."""
        fmt = self.start.format
        if fmt == "ulaw":
            return await pcm_to_ulaw(pcm, rate, self._rate, self._out_resampler)
        if fmt == "alaw":
            return await pcm_to_alaw(pcm, rate, self._rate, self._out_resampler)
        if rate == self._rate:
            return pcm
        return await self._out_resampler.resample(pcm, rate, self._rate)

    async def _audio_out(self, frame: AudioRawFrame) -> bytes | None:
        if not self._may_send.is_set():  # MEDIA_XOFF: hold the audio until MEDIA_XON
            flushes = self._flushes
            try:
                await asyncio.wait_for(self._may_send.wait(), XON_WAIT_SECS)
            except TimeoutError:
                logger.warning(f"asterisk {self.start.channel}: no MEDIA_XON within {XON_WAIT_SECS:.0f} s; "
                               "dropping bot audio")
                return None
            if flushes != self._flushes:  # barge-in while held: this audio is stale
                return None
        data = await self.encode(frame.audio, frame.sample_rate)
        if not data:
            return None
        self._pending.extend(data)
        size = self.start.optimal_frame_size
        whole = len(self._pending) - len(self._pending) % size if size > 0 else len(self._pending)
        whole = min(whole, MAX_MESSAGE_BYTES - MAX_MESSAGE_BYTES % max(size, 1))
        if whole <= 0:
            return None
        out = bytes(self._pending[:whole])
        del self._pending[:whole]
        seconds = len(out) / (1 if self.start.format in G711 else 2) / self._rate
        self.play_until = max(self.play_until, time.monotonic()) + seconds
        return out

    # --- Asterisk -> us ----------------------------------------------------------------
    async def decode(self, media: bytes) -> bytes:
        """The channel's codec -> PCM16 at the pipeline rate."""
        fmt = self.start.format
        if fmt == "ulaw":
            return await ulaw_to_pcm(media, self._rate, self._pipeline_rate, self._in_resampler)
        if fmt == "alaw":
            return await alaw_to_pcm(media, self._rate, self._pipeline_rate, self._in_resampler)
        if len(media) % 2:
            media = media[:-1]
        if self._rate == self._pipeline_rate:
            return media
        return await self._in_resampler.resample(media, self._rate, self._pipeline_rate)

    async def deserialize(self, data: str | bytes) -> Frame | None:
        if isinstance(data, (bytes, bytearray)):
            pcm = await self.decode(bytes(data))
            if not pcm:
                return None
            return InputAudioRawFrame(audio=pcm, sample_rate=self._pipeline_rate, num_channels=1)
        try:
            control = parse_control(data)
        except ControlError as exc:
            logger.warning(f"asterisk {self.start.channel}: {exc}; ignored")
            return None
        return self.on_event(control)

    def on_event(self, control: Control) -> Frame | None:
        self.events.append(control)
        name = control.name
        if name == "MEDIA_XOFF":
            self._may_send.clear()
        elif name == "MEDIA_XON":
            self._may_send.set()
        elif name == "DTMF_END":
            digit = str(control.fields.get("digit") or control.argument)[:1]
            try:
                return InputDTMFFrame(button=KeypadEntry(digit))
            except ValueError:
                logger.warning(f"asterisk {self.start.channel}: DTMF digit {digit!r} is not a keypad key; ignored")
        elif name == "ERROR":
            logger.warning(f"asterisk {self.start.channel}: {control.fields.get('error_text') or control.argument}")
        else:  # MEDIA_MARK_PROCESSED, MEDIA_BUFFERING_COMPLETED, QUEUE_DRAINED, STATUS
            logger.debug(f"asterisk {self.start.channel}: {name} {control.fields or control.argument}")
        return None
