"""The platform as a SIP user agent (PJSIP through pjsua2) that a PBX or carrier trunk calls.

One thread owns PJSIP: it polls SIP events (``libHandleEvents``) and runs every
PJSIP call the asyncio side asks for (``SipAgent.submit``), so no other thread
touches the library. PJSIP's media clock thread drives each call's bridge port
(``media.CallAudioPort``). Call events go to the runner's event loop.

An INVITE from a peer not in ``SIP_ALLOWED_PEERS`` gets 403. Otherwise the
Request-URI's user part (else the To user) is the called number that picks the
bot (``PhoneNumber`` with provider ``sip``): the runner routes and admits it
(``CallRunner.accept``); an unknown number gets 404, no free line 486 Busy Here
(a PBX then plays its own tone or overflows to a queue). An admitted call is
answered (200 with the SDP answer) and its pipeline runs on a ``SipTransport``.
BYE from either side ends it once; a CANCEL before the answer frees the line.
Transfers are REFERs to the transfer number at the calling peer (``sip.call``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import gc
import queue
import re
import sys
import threading
import weakref
from dataclasses import dataclass, field
from urllib.parse import unquote

import pjsua2 as pj
from loguru import logger

from telephony.base import CallRunner, CallStart
from telephony.sip.peers import peer_allowed, split_host_port
from telephony.sip.threads import RegisteredOnFree, SipThreadCollector

# The pinned pjsua2-python wheel is built with PJSUA_MAX_CALLS 4 (its only release with
# AudioMediaPort); a fifth simultaneous INVITE gets PJSIP's own 486 Busy Here. More calls
# per box: a PJSIP build with a higher limit, or more runners (README, "SIP").
PJSUA_MAX_CALLS = 4
PJ_LOG_LEVELS = {0: "ERROR", 1: "ERROR", 2: "WARNING", 3: "DEBUG"}
CODEC_PRIORITY = {"G722/16000/1": 250, "PCMU/8000/1": 240, "PCMA/8000/1": 230}  # others: off
REQUEST_LINE = re.compile(r"^INVITE\s+(\S+)\s+SIP/2\.0", re.IGNORECASE)
SIP_URI_USER = re.compile(r"^(?:sips?:([^@;>]+)@|tel:([^;>]+))", re.IGNORECASE)  # a host-only URI has no user


class SipError(RuntimeError):
    """The SIP endpoint could not start or do what was asked; the message says what."""


@dataclass
class Registration:
    """Registration to a PBX as an extension (REGISTER with digest auth, refreshed by PJSIP)."""

    registrar: str  # sip:pbx.example.com
    user: str
    password: str = ""
    expires_sec: int = 300
    number: str = ""  # the PhoneNumber whose bot answers calls that come through it

    @property
    def domain(self) -> str:
        return re.sub(r"^sips?:", "", self.registrar).split(";")[0]


@dataclass
class SipSettings:
    host: str = "0.0.0.0"
    port: int = 5060
    public_host: str = ""
    rtp_port: int = 10000
    allowed_peers: list[str] = field(default_factory=list)
    registration: Registration | None = None

    @classmethod
    def from_django(cls) -> SipSettings:
        from django.conf import settings

        registration = None
        if settings.SIP_REGISTRAR:
            registration = Registration(
                registrar=settings.SIP_REGISTRAR, user=settings.SIP_REGISTER_USER,
                password=settings.SIP_REGISTER_PASSWORD, expires_sec=settings.SIP_REGISTER_EXPIRES_SEC,
                number=settings.SIP_REGISTER_NUMBER)
        return cls(host=settings.SIP_HOST, port=settings.SIP_PORT, public_host=settings.SIP_PUBLIC_HOST,
                   rtp_port=settings.SIP_RTP_PORT, allowed_peers=list(settings.SIP_ALLOWED_PEERS),
                   registration=registration)


URI_HOST = re.compile(r"sips?:(?:[^@;>]*@)?(\[[^\]]+\]|[^:;>]+)(?::(\d+))?", re.IGNORECASE)


def request_uri_user(whole_msg: str) -> str:
    """The user part of an INVITE's Request-URI (``sip:+4930123@pbx`` -> ``+4930123``), or ''."""
    match = REQUEST_LINE.match(whole_msg or "")
    return uri_user(match.group(1)) if match else ""


def uri_user(uri: str) -> str:
    """The user of a SIP/tel URI, with or without display name and angle brackets."""
    inner = uri[uri.find("<") + 1:] if "<" in uri else uri
    match = SIP_URI_USER.match(inner.strip())
    return unquote(match.group(1) or match.group(2)) if match else ""


def _outgoing_address() -> str:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(("192.0.2.1", 9))  # TEST-NET: nothing is sent
            return sock.getsockname()[0]
        except OSError:
            return "127.0.0.1"


class _PjLog(RegisteredOnFree, pj.LogWriter):
    def write(self, entry):
        level = PJ_LOG_LEVELS.get(entry.level)
        if level:
            logger.log(level, f"pjsip: {entry.msg.rstrip()}")


class _Account(RegisteredOnFree, pj.Account):
    def __init__(self, agent: SipAgent, *, registration: Registration | None = None):
        super().__init__()
        self.agent = agent
        self.registration = registration
        self.reg_state: dict = {}

    def onIncomingCall(self, prm):
        self.agent._incoming(self, prm)

    def onRegState(self, prm):
        self.reg_state = {"code": int(prm.code), "reason": prm.reason, "expires_sec": int(prm.expiration)}
        logger.info(f"sip registration to {self.registration.registrar if self.registration else '?'}: "
                    f"{prm.code} {prm.reason} (expires {prm.expiration} s)")


class SipAgent:
    """Starts and stops PJSIP, accepts calls, and runs PJSIP operations for the asyncio side.

    PJSIP keeps one library state per process: one agent runs at a time.
    """

    name = "sip"
    running: SipAgent | None = None

    def __init__(self, runner: CallRunner, sip_settings: SipSettings | None = None):
        self.runner = runner
        self.settings = sip_settings or SipSettings.from_django()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.calls: dict[int, object] = {}  # PJSUA call id -> sip.call.SipCall (kept alive until disconnected)
        self.pj_objects: weakref.WeakSet = weakref.WeakSet()  # every SipCall and bridge port made
        self.graveyard: list = []  # ended SipCalls, freed on the SIP thread (_bury)
        self.counts = {"invites": 0, "refused_peer": 0, "unknown_number": 0, "busy": 0, "answered": 0, "placed": 0}
        self.error = ""
        self.listening = ""
        self.public_host = ""
        self._commands: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._started: concurrent.futures.Future = concurrent.futures.Future()
        self._accounts: list[_Account] = []
        self._log_writer = None
        self._placing: set[asyncio.Task] = set()  # calls we placed, run on the loop
        self.dialled: set[int] = set()  # placed Call ids already INVITEd (a repeated dial request is refused)

    # --- lifecycle (asyncio side) -----------------------------------------------------
    async def start(self) -> None:
        if SipAgent.running is not None:
            raise SipError(f"a SIP endpoint already runs in this process ({SipAgent.running.listening})")
        SipAgent.running = self
        self.loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._run, name="sip", daemon=True)
        self._thread.start()
        try:
            await asyncio.wrap_future(self._started)
        except Exception as exc:
            self.error = str(exc)
            SipAgent.running = None
            raise
        # The loop's thread drops ended calls' PJSIP objects: PJSIP must know the thread.
        pj.Endpoint.instance().libRegisterThread("voicebot-loop")

    async def stop(self) -> None:
        if self._thread is None:
            return
        self._stopping.set()
        await asyncio.to_thread(self._thread.join, 10)
        self._thread = None
        SipAgent.running = None

    def status(self) -> dict:
        state = {"listening": self.listening, "ok": bool(self.listening) and not self.error,
                 "active_calls": len(self.calls), "max_calls": PJSUA_MAX_CALLS, **self.counts}
        if self.error:
            state["error"] = self.error
        registrations = [{"registrar": account.registration.registrar, "user": account.registration.user,
                          **account.reg_state, "registered": account.reg_state.get("code") == 200}
                         for account in self._accounts if account.registration is not None]
        if registrations:
            state["registrations"] = registrations
        return state

    async def submit(self, fn, *args):
        """Run ``fn(*args)`` on the SIP thread; its result (or exception) comes back here."""
        if self._thread is None:
            raise SipError("the SIP endpoint is not running")
        future: concurrent.futures.Future = concurrent.futures.Future()
        self._commands.put((fn, args, future))
        return await asyncio.wrap_future(future)

    def later(self, fn) -> None:
        """From the SIP thread: run ``fn`` on it after the current PJSIP callback has returned."""
        self._commands.put((fn, (), concurrent.futures.Future()))

    async def register(self, registration: Registration) -> None:
        """Register (also) as an extension of ``registration``'s PBX, refreshed until the endpoint stops."""
        account = await self.submit(self._register, registration, self.public_host)
        self._accounts.append(account)

    def to_loop(self, coro) -> None:
        """From the SIP thread: run ``coro`` on the runner's loop."""
        asyncio.run_coroutine_threadsafe(coro, self.loop)

    async def dial(self, *, uri: str, from_number: str, outbound_call: int, ring_timeout_sec: float,
                   on_status) -> str:
        """INVITE ``uri`` for the placed call ``outbound_call``; its SIP Call-ID. The call then runs on
        its own (``SipCall.place``), reporting its progress to ``on_status(status, note)``."""
        async def ringing():
            await on_status("ringing", "")

        call, call_id, local = await self.submit(self._make_call, uri, from_number, ringing)
        start = CallStart(provider="sip", call_id=call_id, from_=local, to=uri, number=from_number,
                          outbound_call=outbound_call)
        task = asyncio.get_running_loop().create_task(
            call.place(start=start, ring_timeout_sec=ring_timeout_sec, on_status=on_status))
        self._placing.add(task)
        task.add_done_callback(self._placing.discard)
        return call_id

    # --- the SIP thread ---------------------------------------------------------------
    def _run(self) -> None:
        try:
            endpoint = self._create_endpoint()
        except Exception as exc:  # noqa: BLE001 - reported to start()
            self._started.set_exception(SipError(f"SIP endpoint did not start on "
                                                 f"{self.settings.host}:{self.settings.port}: {exc}"))
            return
        self._started.set_result(True)
        collector = SipThreadCollector()  # cyclic garbage is collected here, on the SIP thread
        try:
            polls = 0
            while not self._stopping.is_set():
                endpoint.libHandleEvents(10)
                self._run_commands()
                polls += 1
                if polls % 50 == 0 and self.graveyard:
                    self._bury()
                collector.tick(polls)
        finally:
            self._shutdown(endpoint)
            collector.release()

    def _run_commands(self) -> None:
        while True:
            try:
                fn, args, future = self._commands.get_nowait()
            except queue.Empty:
                return
            try:
                future.set_result(fn(*args))
            except Exception as exc:  # noqa: BLE001 - handed to the awaiting side
                future.set_exception(exc)

    def _create_endpoint(self) -> pj.Endpoint:
        s = self.settings
        endpoint = pj.Endpoint()
        endpoint.libCreate()
        config = pj.EpConfig()
        config.uaConfig.threadCnt = 0  # events are polled by this thread
        config.uaConfig.mainThreadOnly = False
        config.uaConfig.userAgent = "voicebot"
        config.uaConfig.maxCalls = PJSUA_MAX_CALLS
        self._log_writer = _PjLog()
        config.logConfig.writer = self._log_writer
        config.logConfig.level = 3
        config.logConfig.consoleLevel = 3
        config.logConfig.decor = 0
        media = config.medConfig
        media.clockRate = media.sndClockRate = 16000
        media.channelCount = 1
        media.audioFramePtime = 20
        media.ecTailLen = 0  # no echo canceller: there is no loudspeaker here
        media.noVad = True
        media.maxMediaPorts = 256
        endpoint.libInit(config)
        endpoint.audDevManager().setNullDev()  # no sound card: the bridge runs on PJSIP's own clock

        public = s.public_host or (s.host if s.host not in ("0.0.0.0", "::") else _outgoing_address())
        for kind in (pj.PJSIP_TRANSPORT_UDP, pj.PJSIP_TRANSPORT_TCP):
            transport = pj.TransportConfig()
            transport.port = s.port
            if s.host not in ("0.0.0.0", "::"):
                transport.boundAddress = s.host
            transport.publicAddress = public
            endpoint.transportCreate(kind, transport)
        for codec in endpoint.codecEnum2():
            endpoint.codecSetPriority(codec.codecId, CODEC_PRIORITY.get(codec.codecId, 0))
        endpoint.libStart()

        local = _Account(self)
        local_config = self._account_config(f"sip:voicebot@{public}:{s.port}", public)
        local.create(local_config, True)  # the default account: INVITEs to any user reach it
        self._accounts.append(local)
        if s.registration is not None:
            self._accounts.append(self._register(s.registration, public))
        self.listening = f"{s.host}:{s.port}"
        self.public_host = public
        logger.info(f"SIP endpoint listening on {self.listening} (UDP, TCP); SDP and Contact name {public}")
        from django.conf import settings

        if settings.CALLS_MAX_CONCURRENT > PJSUA_MAX_CALLS:
            logger.warning(f"the SIP endpoint takes at most {PJSUA_MAX_CALLS} simultaneous calls (its PJSIP build); "
                           f"more SIP calls get 486 Busy Here although VOICEBOT_CALLS_MAX_CONCURRENT is "
                           f"{settings.CALLS_MAX_CONCURRENT}")
        return endpoint

    def _account_config(self, id_uri: str, public: str) -> pj.AccountConfig:
        config = pj.AccountConfig()
        config.idUri = id_uri
        media = config.mediaConfig.transportConfig
        media.port = self.settings.rtp_port
        media.portRange = 2000
        media.publicAddress = public
        if self.settings.host not in ("0.0.0.0", "::"):
            media.boundAddress = self.settings.host
        return config

    def _register(self, registration: Registration, public: str) -> _Account:
        config = self._account_config(f"sip:{registration.user}@{registration.domain}", public)
        config.regConfig.registrarUri = registration.registrar
        config.regConfig.timeoutSec = registration.expires_sec
        config.regConfig.retryIntervalSec = 30
        config.sipConfig.authCreds.append(pj.AuthCredInfo("digest", "*", registration.user, 0, registration.password))
        account = _Account(self, registration=registration)
        account.create(config)
        return account

    def _incoming(self, account: _Account, prm) -> None:
        from telephony.sip.call import SipCall

        self.counts["invites"] += 1
        call = SipCall(self, account, prm.callId)
        self.calls[call.getId()] = call
        self.pj_objects.add(call)
        host, port = split_host_port(prm.rdata.srcAddress)
        info = call.getInfo()
        if not peer_allowed(host, self.settings.allowed_peers):
            self.counts["refused_peer"] += 1
            logger.warning(f"sip INVITE from {host}:{port} refused (403): not in VOICEBOT_SIP_ALLOWED_PEERS")
            call.answer_with(403, "Forbidden")
            call.owned = False  # no routing task: dropped once PJSIP reports it disconnected
            return
        number = request_uri_user(prm.rdata.wholeMsg) or uri_user(info.localUri)
        if account.registration is not None and account.registration.number:
            number = account.registration.number  # the PBX routed its extension or queue to the bot
        call.peer_host, call.peer_port = host, port
        call.answer_with(180, "Ringing")
        self.to_loop(call.route(number=number, from_=info.remoteUri, to=info.localUri,
                                call_id=info.callIdString))

    def _make_call(self, uri: str, from_number: str, on_ringing):
        """(SIP thread) A new outgoing call to ``uri``: through the PBX account we registered with, if
        any, else the local one; the caller id as P-Asserted-Identity."""
        from telephony.sip.call import SipCall

        account = next((a for a in self._accounts if a.registration is not None), self._accounts[0])
        call = SipCall(self, account, pj.PJSUA_INVALID_ID)
        prm = pj.CallOpParam(True)
        if from_number:
            header = pj.SipHeader()
            header.hName, header.hValue = "P-Asserted-Identity", f"<sip:{from_number}@{self.public_host}>"
            prm.txOption.headers.append(header)
        call._answered = self.loop.create_future()  # only ever completed on the loop (SipCall._on_answered)
        call._on_ringing = on_ringing
        call.makeCall(uri, prm)
        call.pj_id = call.getId()  # PJSUA gives the id at makeCall; _release frees the call by it
        if target := URI_HOST.match(uri):  # the PBX or trunk: where a transfer's REFER names its target
            call.peer_host, call.peer_port = target.group(1).strip("[]"), int(target.group(2) or 0)
        self.calls[call.pj_id] = call
        self.pj_objects.add(call)
        self.counts["placed"] += 1
        info = call.getInfo()
        return call, info.callIdString, info.localUri

    def _bury(self) -> None:
        """Free (here, on the SIP thread) the ended calls nothing else holds any more."""
        # References: the graveyard list, the loop variable, getrefcount's argument.
        self.graveyard = [call for call in self.graveyard if sys.getrefcount(call) > 3]

    def _shutdown(self, endpoint: pj.Endpoint) -> None:
        try:
            endpoint.hangupAllCalls()
            for _ in range(20):
                endpoint.libHandleEvents(10)
            self._run_commands()
            for call in list(self.calls.values()):
                call.port = None  # bridge ports go before the library does
            for account in self._accounts:
                account.shutdown()
            self._accounts.clear()
            self.calls.clear()
            self._bury()
            gc.collect()  # ended calls' PJSIP objects must go before the library
            for leftover in list(self.pj_objects):  # still referenced somewhere (a stored call, a traceback):
                leftover.thisown = False  # never run their C++ destructors against a destroyed library
            endpoint.libDestroy()
        except Exception:  # noqa: BLE001
            logger.exception("SIP endpoint shutdown failed")
        self.listening = ""
