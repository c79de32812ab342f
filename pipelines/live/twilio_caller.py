"""A Twilio Media Streams client that plays a caller: for tests and benchmarks.

It calls as Twilio does (``TwilioCaller.dial``: the signed voice webhook, then the
stream URL and token of its TwiML) and speaks Twilio's protocol to the runner (connected, start, media, stop),
plays WAV files as 8 kHz mu-law in real time and listens to the bot: the audio
it sends back (played out at real-time pace on the caller's side), marks and
clears. ``v2v`` per turn is the end of the caller's speech (from the WAV) to
the first non-silent bot audio that arrives.
"""

from __future__ import annotations

import asyncio
import audioop
import base64
import json
import time
import uuid
from xml.etree import ElementTree

import httpx

import numpy as np
import websockets

from pipelines.live.sim_transport import read_wav_16k, speech_end_sample


async def voice_webhook(runner_url: str, *, to: str, from_: str, call_sid: str, auth_token: str,
                        extra: dict[str, str] | None = None) -> str:
    """POST Twilio's voice webhook, signed with ``auth_token`` as Twilio documents; returns the TwiML."""
    from twilio.request_validator import RequestValidator

    url = runner_url.rstrip("/") + "/telephony/twilio/voice"
    form = {"CallSid": call_sid, "AccountSid": "ACtest", "From": from_, "To": to, "CallStatus": "ringing",
            "Direction": "inbound", **(extra or {})}
    signature = RequestValidator(auth_token).compute_signature(url, form)
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.post(url, data=form, headers={"X-Twilio-Signature": signature})
    response.raise_for_status()
    return response.text


class TwilioCaller:
    def __init__(self, url: str, *, to: str, from_: str = "+12125550199", call_sid: str | None = None,
                 parameters: dict[str, str] | None = None):
        self.url = url
        self.to, self.from_ = to, from_
        self.parameters = parameters or {}  # the TwiML <Parameter>s (the stream token)
        self.call_sid = call_sid or f"CA{uuid.uuid4().hex}"
        self.stream_sid = f"MZ{uuid.uuid4().hex}"
        self.ws = None
        self.bot_audio = bytearray()  # 8 kHz PCM of everything the bot sent
        self.loud_arrivals: list[float] = []  # monotonic times of non-silent bot media
        self.clears: list[float] = []
        self.marks: list[str] = []
        self.play_until = 0.0  # when the bot's audio received so far has finished playing
        self.closed_by_server = asyncio.Event()
        self.speech_ends: list[float] = []
        self._reader = None

    # The protocol: a subclass speaking another provider's stream protocol overrides these three.

    def start_messages(self) -> list[dict]:
        return [{"event": "connected", "protocol": "Call", "version": "1.0.0"}, {
            "event": "start", "sequenceNumber": "1", "streamSid": self.stream_sid,
            "start": {"streamSid": self.stream_sid, "callSid": self.call_sid, "accountSid": "ACtest",
                      "tracks": ["inbound"], "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                      "customParameters": self.parameters},
        }]

    def media_message(self, pcm8: bytes) -> dict:
        """The caller's 8 kHz PCM16 audio as a media message."""
        payload = base64.b64encode(audioop.lin2ulaw(pcm8, 2)).decode()
        return {"event": "media", "streamSid": self.stream_sid, "media": {"track": "inbound", "payload": payload}}

    def bot_pcm(self, message: dict) -> bytes | None:
        """The bot's audio in a message as 8 kHz PCM16; None for other messages."""
        if message.get("event") == "media":
            return audioop.ulaw2lin(base64.b64decode(message["media"]["payload"]), 2)
        return None

    @classmethod
    async def dial(cls, runner_url: str, *, to: str, from_: str = "+12125550199", auth_token: str,
                   call_sid: str | None = None, **kwargs) -> "TwilioCaller":
        """Call as Twilio does: the signed voice webhook first, then the stream its TwiML names.

        ``runner_url`` is the runner's public base URL (what Twilio would call);
        ``auth_token`` signs the webhook as Twilio signs with the account's token.
        """
        call_sid = call_sid or f"CA{uuid.uuid4().hex}"
        twiml = await voice_webhook(runner_url, to=to, from_=from_, call_sid=call_sid, auth_token=auth_token)
        stream = ElementTree.fromstring(twiml).find("./Connect/Stream")
        if stream is None:
            raise RuntimeError(f"the runner did not connect a stream: {twiml}")
        params = {p.get("name"): p.get("value") for p in stream.findall("Parameter")}
        caller = cls(stream.get("url"), to=to, from_=from_, call_sid=call_sid, parameters=params, **kwargs)
        return await caller.connect()

    async def connect(self):
        self.ws = await websockets.connect(self.url, max_size=None)
        for message in self.start_messages():
            await self.ws.send(json.dumps(message))
        self._reader = asyncio.create_task(self._read())
        return self

    async def _read(self):
        try:
            async for raw in self.ws:
                message = json.loads(raw)
                event = message.get("event")
                now = time.monotonic()
                pcm = self.bot_pcm(message)
                if pcm is not None:
                    self.bot_audio.extend(pcm)
                    self.play_until = max(self.play_until, now) + len(pcm) / 2 / 8000
                    if np.abs(np.frombuffer(pcm, dtype=np.int16)).max(initial=0) > 300:
                        self.loud_arrivals.append(now)
                elif event == "clear":
                    self.clears.append(now)
                    self.play_until = now
                elif event == "mark":
                    self.marks.append(message.get("mark", {}).get("name", ""))
        except websockets.ConnectionClosed:
            pass
        finally:
            self.closed_by_server.set()

    async def _send_pcm8(self, pcm8: bytes, clock: list[float]):
        for i in range(0, len(pcm8), 320):
            chunk = pcm8[i:i + 320].ljust(320, b"\0")
            try:
                await self.ws.send(json.dumps(self.media_message(chunk)))
            except websockets.ConnectionClosed:
                return
            clock[0] += 0.02
            await asyncio.sleep(max(0.0, clock[0] - time.monotonic()))

    async def silence(self, seconds: float):
        await self._send_pcm8(bytes(int(seconds * 8000) * 2), [time.monotonic()])

    async def say(self, wav_path: str, *, after_speech_silence: bool = True) -> float:
        """Play the WAV's speech in real time; returns the monotonic time the speech ended."""
        samples = read_wav_16k(wav_path)
        end = speech_end_sample(samples)
        pcm8 = audioop.ratecv(samples.tobytes(), 2, 1, 16000, 8000, None)[0]
        clock = [time.monotonic()]
        await self._send_pcm8(pcm8[: end], clock)  # 16 kHz samples -> 8 kHz bytes: same index
        ended = time.monotonic()
        self.speech_ends.append(ended)
        if after_speech_silence:
            await self._send_pcm8(pcm8[end:], clock)
        return ended

    async def press(self, keys: str, *, gap: float = 0.12) -> float:
        """Press keypad keys as Twilio reports them (one ``dtmf`` event per key, inbound track),
        with ``gap`` seconds of silent media after each; returns the monotonic time of the last key.
        (Twilio numbers every message; the runner reads only the digit, so the numbers here are nominal.)"""
        clock = [time.monotonic()]
        pressed = clock[0]
        for number, digit in enumerate(keys, start=2):
            await self.ws.send(json.dumps({"event": "dtmf", "streamSid": self.stream_sid, "sequenceNumber": str(number),
                                           "dtmf": {"track": "inbound_track", "digit": digit}}))
            pressed = time.monotonic()
            await self._send_pcm8(bytes(int(gap * 8000) * 2), clock)
        return pressed

    def first_bot_audio_after(self, t: float) -> float | None:
        return next((a for a in self.loud_arrivals if a >= t), None)

    async def wait_bot_done(self, *, since: float | None = None, gap: float = 0.8, timeout: float = 45.0) -> bool:
        """Send silence until the bot has spoken (after ``since``) and its audio has played out plus ``gap``."""
        since = since if since is not None else 0.0
        deadline = time.monotonic() + timeout
        clock = [time.monotonic()]
        while time.monotonic() < deadline and not self.closed_by_server.is_set():
            spoke = self.first_bot_audio_after(since) is not None
            if spoke and time.monotonic() > self.play_until + gap:
                return True
            await self._send_pcm8(bytes(320), clock)
        return False

    async def hang_up(self):
        if not self.closed_by_server.is_set():
            try:
                await self.ws.send(json.dumps({"event": "stop", "streamSid": self.stream_sid,
                                               "stop": {"callSid": self.call_sid}}))
                await self.ws.close()
            except websockets.ConnectionClosed:
                pass
        if self._reader:
            await asyncio.wait_for(self._reader, 5)
