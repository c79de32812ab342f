"""Asterisk's side of chan_websocket and AudioSocket, as its documentation and source describe it.

``ChanWebsocketChannel`` is what ``Dial(WebSocket/voicebot/c(ulaw)nv(secret=..,from=..,to=..))``
does (docs.asterisk.org "WebSocket Channel Driver", ``channels/chan_websocket.c``): it
connects to the configured URI with the ``v()`` parameters in the query and the ``media``
subprotocol, sends ``MEDIA_START`` (plain text or JSON), streams the caller's audio as
BINARY frames of one ptime (160 bytes of ulaw per 20 ms), queues what it receives in
``optimal_frame_size`` frames (an odd tail is dropped), obeys the commands (``FLUSH_MEDIA``
empties the queue and, after a ``MEDIA_XOFF``, answers ``MEDIA_XON`` on the next tick;
``HANGUP`` hangs up: the websocket is closed), ignores TEXT messages over 128 bytes, and
hangs up by closing the websocket (``webchan_hangup``).

``AudioSocketChannel`` is what ``AudioSocket(uuid,host:port)`` does (``apps/app_audiosocket.c``):
connects, sends the UUID (kind 0x01), then 20 ms of 8 kHz slin (kind 0x10, 320 bytes) per
20 ms, DTMF as kind 0x03, and hangs up with kind 0x00; kind 0x00 from us ends it.
"""

from __future__ import annotations

import asyncio
import audioop
import time
import uuid as uuid_lib

import numpy as np
import websockets

from pipelines.live.sim_transport import read_wav_16k, speech_end_sample
from telephony.asterisk import audiosocket as wire
from telephony.asterisk.chan_websocket import MAX_COMMAND_BYTES, PLAIN, format_event, parse_control
from tests.ports import free_port

LOUD = 300


class CallerAudio:
    """Real-time playing of WAV speech and silence as 8 kHz PCM in 20 ms frames; the bot's audio heard."""

    frame_bytes_8k = 320  # 20 ms of 8 kHz PCM16

    def __init__(self):
        self.bot_audio = bytearray()  # 8 kHz PCM of everything the bot sent
        self.loud_arrivals: list[float] = []
        self.play_until = 0.0
        self.closed = asyncio.Event()

    async def send_pcm8(self, pcm8: bytes) -> bool:  # one 20 ms frame; overridden per protocol
        raise NotImplementedError

    def heard(self, pcm8: bytes, now: float) -> None:
        self.bot_audio.extend(pcm8)
        self.play_until = max(self.play_until, now) + len(pcm8) / 2 / 8000
        if np.abs(np.frombuffer(pcm8, dtype=np.int16)).max(initial=0) > LOUD:
            self.loud_arrivals.append(now)

    async def _play(self, pcm8: bytes, clock: list[float]):
        for i in range(0, len(pcm8), self.frame_bytes_8k):
            if self.closed.is_set() or not await self.send_pcm8(pcm8[i:i + self.frame_bytes_8k].ljust(320, b"\0")):
                return
            clock[0] += 0.02
            await asyncio.sleep(max(0.0, clock[0] - time.monotonic()))

    async def silence(self, seconds: float):
        await self._play(bytes(int(seconds * 8000) * 2), [time.monotonic()])

    async def say(self, wav_path: str) -> float:
        """Play the WAV in real time; returns the monotonic time its speech ended."""
        samples = read_wav_16k(wav_path)
        end = speech_end_sample(samples)
        pcm8 = audioop.ratecv(samples.tobytes(), 2, 1, 16000, 8000, None)[0]
        clock = [time.monotonic()]
        await self._play(pcm8[:end], clock)  # 16 kHz samples -> 8 kHz bytes: same index
        ended = time.monotonic()
        await self._play(pcm8[end:], clock)
        return ended

    async def wait_bot_done(self, *, since: float = 0.0, gap: float = 0.8, timeout: float = 45.0) -> bool:
        """Send silence until the bot has spoken (after ``since``) and its audio has played out plus ``gap``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self.closed.is_set():
            spoke = any(t >= since for t in self.loud_arrivals)
            if spoke and time.monotonic() > self.play_until + gap:
                return True
            await self.silence(0.02)
        return False

    async def wait_loud(self, timeout: float = 30.0) -> bool:
        deadline = time.monotonic() + timeout
        while not self.loud_arrivals and time.monotonic() < deadline and not self.closed.is_set():
            await self.silence(0.02)
        return bool(self.loud_arrivals)


class ChanWebsocketChannel(CallerAudio):
    """One chan_websocket channel dialled to the runner (Asterisk as the websocket client)."""

    def __init__(self, uri: str, *, fmt: str = "ulaw", style: str = PLAIN, channel_id: str | None = None):
        super().__init__()
        self.uri, self.fmt, self.style = uri, fmt, style
        self.connection_id = str(uuid_lib.uuid4())
        self.channel_id = channel_id or f"{int(time.time())}.{uuid_lib.uuid4().int % 1000}"
        self.channel = f"WebSocket/voicebot/0x{uuid_lib.uuid4().hex[:12]}"
        self.rate = 16000 if fmt == "slin16" else 8000
        self.optimal_frame_size = {"ulaw": 160, "alaw": 160, "slin": 320, "slin16": 640}[fmt]
        self.media: list[tuple[float, int]] = []  # (arrival, bytes) of every BINARY message
        self.commands: list[tuple[float, str, object]] = []  # (arrival, command, correlation id)
        self.queue_frames = 0  # frames queued towards the caller (what FLUSH_MEDIA drops)
        self.xoff_sent = False
        self.answered = False
        self.ws = None
        self._reader = None

    def command_names(self) -> list[str]:
        return [name for _, name, _ in self.commands]

    async def connect(self) -> ChanWebsocketChannel:
        # The driver's websocket code refuses messages over 65500 bytes; "protocols = media".
        self.ws = await websockets.connect(self.uri, subprotocols=["media"], max_size=65500, compression=None)
        await self.ws.send(self.event("MEDIA_START", connection_id=self.connection_id, channel=self.channel,
                                      channel_id=self.channel_id, format=self.fmt,
                                      optimal_frame_size=self.optimal_frame_size, ptime=20,
                                      **({"channel_variables": {"CALLERID(num)": "+12125550199"}}
                                         if self.style != PLAIN else {})))
        self._reader = asyncio.create_task(self._read())
        return self

    def event(self, name: str, **fields) -> str:
        return format_event(name, self.style, **fields)

    async def send_event(self, name: str, **fields) -> None:
        await self.ws.send(self.event(name, **fields))

    async def xoff(self) -> None:
        self.xoff_sent = True
        await self.send_event("MEDIA_XOFF", **({"channel_id": self.channel_id} if self.style != PLAIN else {}))

    async def xon(self) -> None:
        self.xoff_sent = False
        await self.send_event("MEDIA_XON", **({"channel_id": self.channel_id} if self.style != PLAIN else {}))

    async def dtmf(self, digit: str) -> None:
        if self.style == PLAIN:
            await self.ws.send(f"DTMF_END digit:{digit} channel_id:{self.channel_id}")
        else:
            await self.send_event("DTMF_END", channel_id=self.channel_id, digit=digit)

    def _encode(self, pcm8: bytes) -> bytes:
        if self.fmt == "ulaw":
            return audioop.lin2ulaw(pcm8, 2)
        if self.fmt == "alaw":
            return audioop.lin2alaw(pcm8, 2)
        if self.fmt == "slin16":
            return audioop.ratecv(pcm8, 2, 1, 8000, 16000, None)[0][:640].ljust(640, b"\0")
        return pcm8

    def _decode(self, media: bytes) -> bytes:
        if self.fmt == "ulaw":
            return audioop.ulaw2lin(media, 2)
        if self.fmt == "alaw":
            return audioop.alaw2lin(media, 2)
        if self.fmt == "slin16":
            return audioop.ratecv(media, 2, 1, 16000, 8000, None)[0]
        return media

    async def send_pcm8(self, pcm8: bytes) -> bool:
        try:
            await self.ws.send(self._encode(pcm8))  # one frame per ptime, as Asterisk sends
            return True
        except websockets.ConnectionClosed:
            return False

    async def _read(self):
        try:
            async for message in self.ws:
                now = time.monotonic()
                if isinstance(message, bytes):
                    self.media.append((now, len(message)))
                    whole = len(message) - len(message) % self.optimal_frame_size  # the odd tail is dropped
                    self.queue_frames += whole // self.optimal_frame_size
                    self.heard(self._decode(message[:whole]), now)
                    continue
                if len(message.encode()) > MAX_COMMAND_BYTES:
                    self.commands.append((now, "IGNORED_OVERSIZED", message))
                    continue
                control = parse_control(message)
                assert control.style == self.style, f"{control} in the wrong format"
                self.commands.append((now, control.name, control.correlation_id))
                if control.name == "FLUSH_MEDIA":
                    self.queue_frames = 0
                    self.play_until = now
                    if self.xoff_sent:  # dequeue_frame: queue below the XON level again
                        await self.xon()
                elif control.name == "MARK_MEDIA":
                    await self.send_event("MEDIA_MARK_PROCESSED", correlation_id=control.correlation_id)
                elif control.name == "ANSWER":
                    self.answered = True
                elif control.name == "HANGUP":  # the channel hangs up: webchan_hangup closes the websocket
                    await self.ws.close(1000)
        except websockets.ConnectionClosed:
            pass
        finally:
            self.closed.set()

    async def hang_up(self) -> None:
        """The caller hung up: Asterisk closes the websocket (normal closure)."""
        if not self.closed.is_set():
            await self.ws.close(1000)
        if self._reader:
            await asyncio.wait_for(self._reader, 5)


class AudioSocketChannel(CallerAudio):
    """One ``AudioSocket(uuid,host:port)`` connection (8 kHz slin, kind 0x10)."""

    def __init__(self, host: str, port: int, stream_uuid: uuid_lib.UUID):
        super().__init__()
        self.host, self.port, self.stream_uuid = host, port, stream_uuid
        self.messages: list[tuple[float, int, int]] = []  # (arrival, kind, payload bytes)
        self.hangup_received = False
        self.reader = self.writer = None
        self._task = None

    async def connect(self) -> AudioSocketChannel:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.writer.write(wire.encode(wire.KIND_UUID, self.stream_uuid.bytes))
        await self.writer.drain()
        self._task = asyncio.create_task(self._read())
        return self

    async def send_pcm8(self, pcm8: bytes) -> bool:
        if self.writer.is_closing():
            return False
        try:
            self.writer.write(wire.encode(wire.KIND_SLIN, pcm8))
            await self.writer.drain()
            return True
        except (ConnectionError, OSError):
            return False

    async def dtmf(self, digit: str) -> None:
        self.writer.write(wire.encode(wire.KIND_DTMF, digit.encode()))
        await self.writer.drain()

    async def _read(self):
        try:
            while True:
                message = await wire.read_message(self.reader)
                now = time.monotonic()
                if message is None:
                    break
                self.messages.append((now, message.kind, len(message.payload)))
                if message.kind == wire.KIND_HANGUP:  # audiosocket_run: graceful termination
                    self.hangup_received = True
                    break
                if message.kind == wire.KIND_SLIN:
                    self.heard(message.payload, now)
        except (ConnectionError, OSError, wire.AudioSocketError):
            pass
        finally:
            self.closed.set()
            self.writer.close()

    async def hang_up(self) -> None:
        if not self.writer.is_closing():
            self.writer.write(wire.HANGUP_FRAME)
            try:
                await self.writer.drain()
            except (ConnectionError, OSError):
                pass
            self.writer.close()
        if self._task:
            await asyncio.wait_for(self._task, 5)


class AsteriskEndpoints:
    """``websocket_routes(runner)`` under uvicorn and ``start_audiosocket_server(runner)``, in a thread.

    The way the runner mounts them (README "Asterisk"), with the runner's own ``CallHub``
    (or a stand-in ``runner`` with ``accept``); ``ws_url(**params)`` is the
    ``websocket_client.conf`` URI with the dial string's ``v()`` parameters appended.
    """

    def __init__(self, runner):
        self.runner = runner
        self.port = free_port()
        self.audiosocket_port = free_port()
        self.server = None
        self.thread = None

    def ws_url(self, **params) -> str:
        from urllib.parse import urlencode

        return f"ws://127.0.0.1:{self.port}/telephony/asterisk/media" + (f"?{urlencode(params)}" if params else "")

    def __enter__(self):
        import contextlib
        import threading

        import uvicorn
        from starlette.applications import Starlette

        from telephony.asterisk import start_audiosocket_server, websocket_routes

        ready = threading.Event()

        async def lifespan(app):
            server = await start_audiosocket_server(self.runner, host="127.0.0.1", port=self.audiosocket_port)
            ready.set()
            try:
                yield
            finally:
                server.close()

        app = Starlette(routes=websocket_routes(self.runner), lifespan=contextlib.asynccontextmanager(lifespan))
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                                    ws="websockets", ws_ping_interval=None))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        if not ready.wait(20):
            raise RuntimeError("the Asterisk endpoints did not start")
        deadline = time.monotonic() + 10
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the chan_websocket server did not start on port {self.port}")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(10)

