"""A SIP caller for the benchmarks: SIPp does the signalling, a Python RTP endpoint the media.

SIPp (``bench/sip/bench_call.xml``) runs in 3PCC controller-B mode: it listens on a
TCP "twin" socket and creates one call per command the bench sends there
(``Call-ID``, ``Media-Port``). The INVITE's SDP (PCMU only, ptime 20) points at this
process's ``RtpEndpoint`` on 127.0.0.1:<Media-Port>, one port per call. SIPp tells
the bench when the 200 has been ACKed (``Event: answered``); the bench's
``Event: hangup`` makes SIPp send BYE, and ``Event: ended`` follows its 200. So no
SIP is spoken in Python, and the call ends exactly when the bench is done with it.

``RtpEndpoint`` sends the caller's audio as PCMU RTP every 20 ms (silence when not
speaking, as a phone without VAD does) from the same port it receives on, so
PJSIP's symmetric-RTP latching keeps sending there, and records every packet the bot
sends with its arrival time (the kernel's receive timestamp on ``time.monotonic``'s scale). Timing matches
``pipelines.live.twilio_caller.TwilioCaller``: the speech of a WAV is sent at real-time
pace, its end is when the last speech frame's 20 ms have passed, and v2v is that
instant to the arrival of the first non-silent bot packet (peak > 300, 8 kHz PCM).
"""

from __future__ import annotations

import asyncio
import audioop
import contextlib
import itertools
import os
import random
import re
import socket
import struct
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pipelines.live.sim_transport import read_wav_16k, speech_end_sample

SCENARIO = Path(__file__).resolve().parent / "sip" / "bench_call.xml"
FRAME_SECS = 0.02
FRAME_SAMPLES = 160  # 20 ms at 8 kHz
LOUD = 300  # peak of a non-silent 8 kHz PCM frame (the Twilio caller's threshold)
PT_PCMU = 0


def json_stdout():
    """A file on the real stdout for the benchmark's JSON; fd 1 itself goes to stderr from now on.

    pjlib prints its first log lines (``libCreate``, before ``libInit`` installs the
    endpoint's log writer) straight to fd 1, which would corrupt the JSON on stdout.
    """
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    return out


def free_port(kind: int = socket.SOCK_DGRAM, *, even: bool = False) -> int:
    for _ in range(100):
        with socket.socket(socket.AF_INET, kind) as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if not even or port % 2 == 0:
            return port
    raise RuntimeError("no free port")


@dataclass
class Packet:
    arrival: float
    seq: int
    ts: int
    loud: bool


SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # Linux: the kernel stamps each datagram on arrival


class RtpEndpoint:
    """One call's media: sends the caller's PCMU frames, records the bot's packets.

    Arrival times are the kernel's receive timestamps (SO_TIMESTAMPNS), mapped onto
    ``time.monotonic``: the runner shares this process and its event loop, so the time
    the loop gets round to reading a packet would add the runner's own loop stalls
    to the gaps measured; the kernel's stamp is when the packet actually arrived.
    """

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.closed = False
        self.remote: tuple | None = None  # where the bot's RTP comes from (latched)
        self.packets: list[Packet] = []
        self.other_payloads = 0  # packets that were not PCMU (events, comfort noise)
        self.bot_audio = bytearray()
        self.loud_arrivals: list[float] = []
        self.first_packet = asyncio.Event()
        self.read_delay_max = 0.0  # the longest a packet waited for the loop to read it
        self._outbound = bytearray()  # 8 kHz PCM16 queued for sending
        self._marks: list[tuple[int, asyncio.Future]] = []  # (bytes sent when done, future of that time)
        self._sent_bytes = 0
        self._queued_bytes = 0
        self._sender: asyncio.Task | None = None
        self._seq = random.randrange(1 << 16)
        self._ts = random.randrange(1 << 32)
        self._ssrc = random.randrange(1 << 32)
        self._realtime_to_monotonic = time.monotonic() - time.time()
        self.send_lateness_max = 0.0  # how far behind its 20 ms clock the sender ever fell

    @classmethod
    async def open(cls, port: int = 0) -> RtpEndpoint:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        sock.bind(("127.0.0.1", port))
        sock.setblocking(False)
        endpoint = cls(sock)
        asyncio.get_running_loop().add_reader(sock.fileno(), endpoint._readable)
        return endpoint

    @property
    def port(self) -> int:
        return self.sock.getsockname()[1]

    # --- receiving ---------------------------------------------------------------------
    def _readable(self):
        while True:
            try:
                data, ancdata, _, addr = self.sock.recvmsg(2048, 64)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # ICMP port unreachable after the far end closed: ignore
                continue
            now = time.monotonic()
            arrival = now
            for level, kind, value in ancdata:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(value) >= 16:
                    secs, nanos = struct.unpack("qq", value[:16])
                    arrival = min(now, secs + nanos / 1e9 + self._realtime_to_monotonic)
            self.read_delay_max = max(self.read_delay_max, now - arrival)
            self._packet(data, addr, arrival)

    def _packet(self, data: bytes, addr, now: float):
        if len(data) < 12 or data[0] >> 6 != 2:
            return
        cc, has_ext = data[0] & 0x0F, data[0] & 0x10
        pt = data[1] & 0x7F
        seq, ts = struct.unpack("!HI", data[2:8])
        header = 12 + 4 * cc
        if has_ext and len(data) >= header + 4:
            header += 4 + 4 * struct.unpack("!H", data[header + 2:header + 4])[0]
        if self.remote is None:
            self.remote = addr
            self.first_packet.set()
            if self._sender is None:
                self._sender = asyncio.get_running_loop().create_task(self._send_loop())
        if pt != PT_PCMU:
            self.other_payloads += 1
            return
        pcm = audioop.ulaw2lin(data[header:], 2)
        loud = int(np.abs(np.frombuffer(pcm, dtype=np.int16)).max(initial=0)) > LOUD
        self.packets.append(Packet(now, seq, ts, loud))
        self.bot_audio.extend(pcm)
        if loud:
            self.loud_arrivals.append(now)

    # --- sending -----------------------------------------------------------------------
    def queue(self, pcm8: bytes) -> asyncio.Future:
        """Queue 8 kHz PCM16; the future gets the monotonic time its last frame's 20 ms ended."""
        self._outbound += pcm8
        self._queued_bytes += len(pcm8)
        done = asyncio.get_running_loop().create_future()
        self._marks.append((self._queued_bytes, done))
        return done

    async def _send_loop(self):
        clock = time.monotonic()
        frame_bytes = FRAME_SAMPLES * 2
        while not self.closed:
            chunk = bytes(self._outbound[:frame_bytes])
            del self._outbound[:frame_bytes]
            self._sent_bytes += len(chunk)
            header = struct.pack("!BBHII", 0x80, PT_PCMU, self._seq, self._ts, self._ssrc)
            with contextlib.suppress(OSError):
                self.sock.sendto(header + audioop.lin2ulaw(chunk.ljust(frame_bytes, b"\0"), 2), self.remote)
            self._seq = (self._seq + 1) & 0xFFFF
            self._ts = (self._ts + FRAME_SAMPLES) & 0xFFFFFFFF
            clock += FRAME_SECS
            self.send_lateness_max = max(self.send_lateness_max, time.monotonic() - (clock - FRAME_SECS))
            await asyncio.sleep(max(0.0, clock - time.monotonic()))
            # As in TwilioCaller: a frame is sent at its start; its audio has "been spoken" 20 ms later.
            while self._marks and self._marks[0][0] <= self._sent_bytes:
                _, done = self._marks.pop(0)
                if not done.done():
                    done.set_result(time.monotonic())

    def close(self):
        if self.closed:
            return
        self.closed = True
        if self._sender is not None:
            self._sender.cancel()
        asyncio.get_running_loop().remove_reader(self.sock.fileno())
        self.sock.close()

    # --- what the caller heard ---------------------------------------------------------
    def first_bot_audio_after(self, t: float) -> float | None:
        return next((a for a in self.loud_arrivals if a >= t), None)


class SippSession:
    """One SIPp process placing calls on command, to ``target`` (host:port) for ``service``."""

    def __init__(self, target: str, service: str, *, workdir: Path | None = None, max_secs: int = 3600):
        self.target, self.service = target, service
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="bench-sipp-"))
        self.max_secs = max_secs
        self.proc: subprocess.Popen | None = None
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.events: dict[str, dict[str, asyncio.Event]] = {}
        self.statuses: dict[str, int] = {}  # Call-ID -> the final 4xx/5xx its INVITE got
        self.stdout = ""
        self._task: asyncio.Task | None = None
        self._ids = itertools.count(1)

    async def start(self) -> SippSession:
        twin, sip_port = free_port(socket.SOCK_STREAM), free_port()
        cmd = ["sipp", self.target, "-sf", str(SCENARIO), "-3pcc", f"127.0.0.1:{twin}", "-s", self.service,
               "-i", "127.0.0.1", "-p", str(sip_port), "-mp", str(free_port(even=True)), "-nostdin",
               "-timeout", f"{self.max_secs}s", "-trace_err", "-error_file", str(self.workdir / "errors.log"),
               "-trace_msg", "-message_file", str(self.workdir / "messages.log")]
        self.proc = subprocess.Popen(cmd, cwd=self.workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,  # noqa: ASYNC220 - SIPp runs for the whole session
                                     stdin=subprocess.DEVNULL, text=True)
        deadline = time.monotonic() + 10
        while True:
            try:
                self.reader, self.writer = await asyncio.open_connection("127.0.0.1", twin)
                break
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError(f"SIPp did not open its twin socket: {self.proc.communicate()[0][-2000:]}")
                await asyncio.sleep(0.05)
        self._task = asyncio.create_task(self._read())
        return self

    def _event(self, call_id: str, name: str) -> asyncio.Event:
        return self.events.setdefault(call_id, {}).setdefault(name, asyncio.Event())

    async def _read(self):
        buf = b""
        while chunk := await self.reader.read(4096):
            buf += chunk
            while b"\x1b" in buf:
                message, buf = buf.split(b"\x1b", 1)
                text = message.decode(errors="replace")
                call_id = re.search(r"Call-ID:\s*(\S+)", text)
                event = re.search(r"Event:\s*(\S+)", text)
                if call_id and event:
                    self._event(call_id.group(1), event.group(1)).set()
                    if event.group(1) == "refused" and (status := re.search(r"Status:\s*(\d+)", text)):
                        self.statuses[call_id.group(1)] = int(status.group(1))

    def _send(self, call_id: str, **headers):
        lines = [f"Call-ID: {call_id}"] + [f"{k.replace('_', '-').title()}: {v}" for k, v in headers.items()]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n\x1b").encode())

    def place(self, media_port: int) -> str:
        """Make SIPp dial, offering ``media_port``; returns the call's SIP Call-ID."""
        call_id = f"bench-{os.getpid()}-{next(self._ids)}@127.0.0.1"
        self._event(call_id, "answered"), self._event(call_id, "ended"), self._event(call_id, "refused")
        self._send(call_id, media_port=media_port)
        return call_id

    def hang_up(self, call_id: str):
        self._send(call_id, event="hangup")

    async def close(self) -> dict:
        """Close the twin socket (SIPp then exits) and return SIPp's own call counts."""
        if self.writer is not None:
            self.writer.close()
        if self._task is not None:
            self._task.cancel()
        try:
            out, _ = await asyncio.to_thread(self.proc.communicate, timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            out, _ = await asyncio.to_thread(self.proc.communicate)
        self.stdout = out or ""
        counts = {}
        for name in ("Successful call", "Failed call", "Outgoing calls created"):
            found = re.findall(rf"{name}\s*\|[^|]*\|\s*(\d+)", self.stdout)
            if found:
                counts[name.lower().replace(" ", "_")] = int(found[-1])
        counts["returncode"] = self.proc.returncode
        return counts


@dataclass
class SipCaller:
    """One call placed through ``session``, spoken and heard by an ``RtpEndpoint``."""

    session: SippSession
    rtp: RtpEndpoint = None
    call_id: str = ""
    answered_at: float | None = None
    ended_cleanly: bool = False
    turn_spans: list[tuple[float, float]] = field(default_factory=list)  # (speech start, speech end) per turn

    @classmethod
    async def dial(cls, session: SippSession, *, timeout: float = 15.0) -> SipCaller:
        caller = cls(session, await RtpEndpoint.open(free_port(even=True)))
        caller.call_id = session.place(caller.rtp.port)
        events = session.events[caller.call_id]
        waits = [asyncio.ensure_future(events[name].wait()) for name in ("answered", "refused")]
        await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        for wait in waits:
            wait.cancel()
        if events["answered"].is_set():
            caller.answered_at = time.monotonic()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(caller.rtp.first_packet.wait(), timeout)
        return caller

    @property
    def refused_with(self) -> int | None:
        """The final 4xx/5xx status the INVITE got, if it was refused."""
        return self.session.statuses.get(self.call_id)

    @property
    def answered(self) -> bool:
        return self.answered_at is not None and self.rtp.first_packet.is_set()

    async def say(self, wav_path: str, *, after_speech_silence: bool = True) -> float:
        """Speak the WAV's speech in real time; returns the monotonic time the speech ended."""
        samples = read_wav_16k(wav_path)
        end = speech_end_sample(samples)
        pcm8 = audioop.ratecv(samples.tobytes(), 2, 1, 16000, 8000, None)[0]
        started = time.monotonic()
        speech = pcm8[:end]  # 16 kHz samples -> 8 kHz bytes: the same index
        speech = speech[: len(speech) // 2 * 2]
        ended = await self.rtp.queue(speech)
        self.turn_spans.append((started, ended))
        if after_speech_silence:
            await self.rtp.queue(pcm8[len(speech):])
        return ended

    async def wait_bot_done(self, *, since: float = 0.0, gap: float = 0.8, timeout: float = 45.0) -> bool:
        """Until the bot has spoken after ``since`` and ``gap`` s have passed since its last loud packet
        (RTP arrives at real-time pace, so that is when what it said has been heard)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.session.events[self.call_id]["ended"].is_set():
                return False
            arrivals = self.rtp.loud_arrivals
            if self.rtp.first_bot_audio_after(since) is not None and time.monotonic() > arrivals[-1] + gap:
                return True
            await asyncio.sleep(0.02)
        return False

    def first_bot_audio_after(self, t: float) -> float | None:
        return self.rtp.first_bot_audio_after(t)

    async def hang_up(self, *, timeout: float = 10.0) -> bool:
        ended = self.session.events[self.call_id]["ended"]
        if self.answered_at is not None:
            self.session.hang_up(self.call_id)
            try:
                await asyncio.wait_for(ended.wait(), timeout)
            except TimeoutError:
                pass
        self.ended_cleanly = ended.is_set()
        self.rtp.close()
        return self.ended_cleanly

    # --- media quality ------------------------------------------------------------------
    def rtp_report(self) -> dict:
        """Arrival gaps of the bot's RTP: over the whole call, and inside each reply.

        A reply is the bot's loud packets between one caller turn's end and the next turn's
        start (the greeting: before the first turn); inside a reply means from its first to
        its last loud packet, silent packets included (PJSIP sends RTP continuously).
        """
        packets = self.rtp.packets
        arrivals = np.array([p.arrival for p in packets])
        gaps = np.diff(arrivals) * 1000 if len(arrivals) > 1 else np.zeros(0)
        seqs = [p.seq for p in packets]
        missing = sum(((b - a) & 0xFFFF) - 1 for a, b in itertools.pairwise(seqs) if ((b - a) & 0xFFFF) != 1)
        bounds = [0.0] + [end for _, end in self.turn_spans]
        nexts = [start for start, _ in self.turn_spans] + [float("inf")]
        replies = []
        for lo, hi in zip(bounds, nexts):
            loud = [i for i, p in enumerate(packets) if p.loud and lo <= p.arrival < hi]
            if len(loud) < 2:
                continue
            first, last = loud[0], loud[-1]
            inside = gaps[first:last] if last > first else np.zeros(0)
            silent_run = longest = 0
            for p in packets[first:last + 1]:
                silent_run = 0 if p.loud else silent_run + 1
                longest = max(longest, silent_run)
            replies.append({"secs": round(packets[last].arrival - packets[first].arrival, 2),
                            "max_gap_ms": round(float(inside.max()), 1) if len(inside) else None,
                            "longest_silent_run_ms": longest * 20})
        in_replies = [r["max_gap_ms"] for r in replies if r["max_gap_ms"] is not None]
        return {
            "packets": len(packets), "missing_seq": int(missing), "non_pcmu": self.rtp.other_payloads,
            "max_gap_ms_call": round(float(gaps.max()), 1) if len(gaps) else None,
            "p99_gap_ms_call": round(float(np.percentile(gaps, 99)), 1) if len(gaps) else None,
            "gaps_over_40ms": int((gaps > 40).sum()), "gaps_over_100ms": int((gaps > 100).sum()),
            "max_gap_ms_in_replies": max(in_replies) if in_replies else None,
            "replies": replies, "caller_send_lateness_max_ms": round(self.rtp.send_lateness_max * 1000, 1),
            "read_delay_max_ms": round(self.rtp.read_delay_max * 1000, 1),
        }


async def start_sip_runner(hub, *, sip_port: int | None = None, rtp_port: int | None = None):
    """The runner app in this process with its SIP endpoint (PJSIP) as a listener, as ``runbots`` has it.

    Returns (server, serve_task, "127.0.0.1:port"). Stop it with ``server.should_exit = True; await serve``.
    """
    import uvicorn

    from pipelines.live.runner import create_app
    from telephony.sip.agent import SipAgent, SipSettings

    sip_port = sip_port or free_port()
    rtp_port = rtp_port or 20000 + random.randrange(0, 20000, 2)
    app = create_app(hub, preload=False, listeners=lambda h: [
        SipAgent(h, SipSettings(host="127.0.0.1", port=sip_port, rtp_port=rtp_port))])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", ws="websockets"))
    serve = asyncio.create_task(server.serve())
    while not server.started:
        if serve.done():
            await serve  # raises what stopped it
            raise RuntimeError("the runner stopped before it started")
        await asyncio.sleep(0.05)
    return server, serve, f"127.0.0.1:{sip_port}"


def finished_call(hub, call_id: str):
    """The runner's LiveCall for SIP Call-ID ``call_id`` once it has finished, else None."""
    return next((c for c in reversed(hub.finished) if c.info.external_id == call_id), None)
