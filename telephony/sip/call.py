"""One SIP call: PJSIP's callbacks (SIP thread) and its life on the runner's loop.

Routing, answering and the pipeline run on the loop (``route``); what PJSIP
reports (state, media, DTMF, transfer progress) comes in on the SIP thread and is
handed over with ``agent.to_loop``. Every PJSIP operation goes back through
``agent.submit``, so only the SIP thread calls the library.

Transfers (``transfer``) wait until the bot's "putting you through" has been heard,
then send a REFER to the transfer number at the peer that sent the call (or to the
number itself when it is a SIP URI). A refused or failed REFER raises
``TransferRefused``; the call then tells the caller it could not put them through.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref

import pjsua2 as pj
from loguru import logger

from telephony.base import CallControl, CallStart, Refusal
from telephony.sip.media import CallAudio, CallAudioPort, SipTransport, port_format
from telephony.sip.threads import RegisteredOnFree

REFUSAL_STATUS = {"busy": (486, "Busy Here"), "unknown_number": (404, "Not Found")}
MEDIA_TIMEOUT_SECS = 10.0
TRANSFER_TIMEOUT_SECS = 15.0
HANG_UP_WAIT_SECS = 2.0


def outbound_status(code: int) -> str:
    """The ``Call.Status`` of a placed call that ended with SIP ``code`` before it was answered."""
    if code in (486, 600, 603):
        return "busy"
    if code in (408, 480, 487):
        return "no-answer"
    return "failed"


class TransferRefused(RuntimeError):
    """The PBX refused or failed the REFER; the message has its status."""


class SipCall(RegisteredOnFree, pj.Call):
    def __init__(self, agent, account, call_id: int):
        super().__init__(account, call_id)
        self.agent = agent
        self.pj_id = call_id
        self.peer_host, self.peer_port = "", 0
        self.port: CallAudioPort | None = None  # PJSIP's; only the SIP thread creates and drops it
        self.audio: CallAudio | None = None
        self.transport: SipTransport | None = None
        self.accepted = None
        self.disconnected = False
        self.owned = True  # a routing task on the loop owns the call (False: refused at once, no task)
        self.bot_hung_up = False
        self.dtmf_in: list[str] = []
        self._media: asyncio.Future | None = None
        self._transfer: asyncio.Future | None = None
        self._transfer_accepted = False
        self._gone: asyncio.Event | None = None
        self._answered: asyncio.Future | None = None  # a call we placed: set at 200 OK, failed at a final error
        self._on_ringing = None  # ... and told when it rings (180/183)

    # --- SIP thread -------------------------------------------------------------------
    def answer_with(self, code: int, reason: str = "") -> None:
        if self.disconnected:
            return
        prm = pj.CallOpParam(True)
        prm.statusCode = code
        if reason:
            prm.reason = reason
        self.answer(prm)

    def _hang_up_now(self) -> None:
        if not self.disconnected:
            self.hangup(pj.CallOpParam(True))

    def onCallState(self, prm):
        info = self.getInfo()
        if self._answered is not None:  # a call we placed: its progress
            if info.state == pj.PJSIP_INV_STATE_EARLY and self._on_ringing is not None:
                ringing, self._on_ringing = self._on_ringing, None
                self.agent.to_loop(ringing())
            elif info.state == pj.PJSIP_INV_STATE_CONFIRMED:
                self.agent.to_loop(self._on_answered(None))
            elif info.state == pj.PJSIP_INV_STATE_DISCONNECTED:
                self.agent.to_loop(self._on_answered(int(info.lastStatusCode)))
        if info.state == pj.PJSIP_INV_STATE_DISCONNECTED and not self.disconnected:
            self.disconnected = True
            if self.audio is not None:
                self.audio.closed = True
            if self.owned:
                self.agent.to_loop(self._on_disconnected(int(info.lastStatusCode)))
            else:
                self.agent.later(self._release)

    def onCallMediaState(self, prm):
        info = self.getInfo()
        for media in info.media:
            if media.type != pj.PJMEDIA_TYPE_AUDIO or media.status != pj.PJSUA_CALL_MEDIA_ACTIVE:
                continue
            audio = self.getAudioMedia(media.index)
            first = self.port is None
            if first:
                self.audio = CallAudio(self.agent.loop)
                self.port = CallAudioPort(self.audio)
                self.port.createPort(f"call-{self.pj_id}", port_format())
                self.agent.pj_objects.add(self.port)
            audio.startTransmit(self.port)
            self.port.startTransmit(audio)
            if first:
                self.agent.to_loop(self._on_media())

    def onDtmfDigit(self, prm):
        self.agent.to_loop(self._on_dtmf(str(prm.digit)))

    def onCallTransferStatus(self, prm):
        self.agent.to_loop(self._on_transfer_status(int(prm.statusCode), bool(prm.finalNotify)))

    def _release(self) -> None:
        """Drop PJSIP's objects of an ended call (on the SIP thread, where PJSIP may free them).

        The call object itself goes to the agent's graveyard, which frees it on this thread once
        nothing else holds it: PJSIP's destructor must never run on a thread PJSIP does not know
        (a cyclic garbage collection can run on any thread).
        """
        if self.agent.calls.pop(self.pj_id, None) is not None:
            self.agent.graveyard.append(self)
        self.port = None
        self.transport = self.accepted = self._media = self._transfer = None

    # --- the runner's loop ------------------------------------------------------------
    async def route(self, *, number: str, from_: str, to: str, call_id: str) -> None:
        """Route the INVITE through the runner, answer it, and run the call to its end."""
        self._gone = asyncio.Event()
        if self.disconnected:
            self._gone.set()
        start = CallStart(provider="sip", call_id=call_id, from_=from_, to=to, number=number)
        try:
            result = await self.agent.runner.accept(start)
        except Exception:  # noqa: BLE001 - a database outage: the PBX may retry elsewhere
            logger.exception(f"sip call {call_id}: routing failed")
            await self._refuse(503, "Service Unavailable")
            return
        if isinstance(result, Refusal):
            code, reason = REFUSAL_STATUS.get(result.reason, (480, "Temporarily Unavailable"))
            self.agent.counts[result.reason if result.reason in self.agent.counts else "busy"] += 1
            logger.warning(f"sip call {call_id} to {number!r} from {from_}: {result.reason}; answering {code}")
            await self._refuse(code, reason)
            return
        if self.disconnected:  # CANCEL while routing
            result.release()
            await self.agent.submit(self._release)
            return
        self.accepted = result
        self._media = asyncio.get_running_loop().create_future()
        self.agent.counts["answered"] += 1
        try:
            await self.agent.submit(self.answer_with, 200, "")
            await asyncio.wait_for(self._media, MEDIA_TIMEOUT_SECS)
        except (TimeoutError, pj.Error, asyncio.CancelledError) as exc:
            logger.warning(f"sip call {call_id}: no media after the answer ({type(exc).__name__}); hanging up")
            result.release()
            await self._end_leg()
            return
        control = self.control()
        self.transport = SipTransport(self.audio, send_dtmf=control.send_dtmf, name=f"sip-{self.pj_id}")
        try:
            await result.run(self.transport, control)
        finally:
            await self._end_leg()

    async def place(self, *, start: CallStart, ring_timeout_sec: float, on_status) -> None:
        """A call we placed (``SipAgent.dial``): wait for the answer, then run it like an answered INVITE.

        ``on_status(status, note)`` reports its progress (ringing, in-progress) and, if it never
        connects, its end (busy, no-answer, failed) from the final SIP status."""
        self._gone = asyncio.Event()
        try:
            code = await asyncio.wait_for(asyncio.shield(self._answered), ring_timeout_sec)
        except TimeoutError:
            logger.info(f"sip call {start.call_id} to {start.to}: no answer in {ring_timeout_sec:.0f} s; cancelling")
            with contextlib.suppress(pj.Error):
                await self.agent.submit(self._hang_up_now)
            await on_status("no-answer", f"no answer within {ring_timeout_sec:.0f} s")
            await self.agent.submit(self._release)
            return
        if code is not None:  # a final error before any answer
            await on_status(outbound_status(code), f"SIP {code}")
            await self.agent.submit(self._release)
            return
        await on_status("in-progress", "")
        result = await self.agent.runner.accept(start)
        if isinstance(result, Refusal):
            await on_status("failed", f"answered, but the runner refused it: {result.reason}")
            await self._end_leg()
            return
        self.accepted = result
        if self.audio is None:
            self._media = asyncio.get_running_loop().create_future()
            try:
                await asyncio.wait_for(self._media, MEDIA_TIMEOUT_SECS)
            except (TimeoutError, asyncio.CancelledError):
                result.release()
                await self._end_leg()
                return
        control = self.control()
        self.transport = SipTransport(self.audio, send_dtmf=control.send_dtmf, name=f"sip-{self.pj_id}")
        try:
            await result.run(self.transport, control)
        finally:
            await self._end_leg()

    async def _on_answered(self, code: int | None) -> None:
        if self._answered is not None and not self._answered.done():
            self._answered.set_result(code)

    async def _refuse(self, code: int, reason: str) -> None:
        with contextlib.suppress(pj.Error):
            await self.agent.submit(self.answer_with, code, reason)
        await self.agent.submit(self._release)

    async def _end_leg(self) -> None:
        """After the pipeline: hang up if nobody has, then free PJSIP's side."""
        if not self.disconnected:
            self.bot_hung_up = True
            with contextlib.suppress(pj.Error):
                await self.agent.submit(self._hang_up_now)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._gone.wait(), HANG_UP_WAIT_SECS)
        await self.agent.submit(self._release)

    async def _on_media(self) -> None:
        if self._media is not None and not self._media.done():
            self._media.set_result(True)

    async def _on_disconnected(self, status: int) -> None:
        if self._gone is not None:
            self._gone.set()
        if self._media is not None and not self._media.done():
            self._media.set_exception(asyncio.CancelledError())
        if self._transfer is not None and not self._transfer.done():
            self._transfer.set_result(200 if self._transfer_accepted else status)
        if self.accepted is not None and not self.bot_hung_up:
            await self.accepted.caller_left()

    async def _on_dtmf(self, digit: str) -> None:
        self.dtmf_in.append(digit)
        if self.transport is not None:
            await self.transport.input().dtmf(digit)

    async def _on_transfer_status(self, code: int, final: bool) -> None:
        if self._transfer is None or self._transfer.done():
            return
        if code == 202 or (200 <= code < 300 and not final):
            self._transfer_accepted = True
        if final or code >= 300:
            self._transfer.set_result(code)

    # --- call control ---------------------------------------------------------------
    def control(self) -> CallControl:
        """The call's controls, holding the call weakly: a stored call (``CallHub.finished``) must
        not keep PJSIP's call object alive once it has ended."""
        call = weakref.ref(self)

        async def hang_up():
            if (live := call()) is not None:
                await live.hang_up()

        async def transfer(number: str):
            if (live := call()) is None:
                raise TransferRefused("the call has ended")
            await live.transfer(number)

        async def send_dtmf(digits: str):
            if (live := call()) is not None:
                await live.send_dtmf(digits)

        return CallControl(hang_up=hang_up, transfer=transfer, send_dtmf=send_dtmf)

    async def hang_up(self) -> None:
        """The bot ended the call: BYE once (nothing if the caller already left)."""
        if self.disconnected or self.bot_hung_up:
            return
        await self._wait_playout(first_audio_secs=0.3)  # the pipeline has ended: only the queue is left
        self.bot_hung_up = True
        await self.agent.submit(self._hang_up_now)

    async def send_dtmf(self, digits: str) -> None:
        await self.agent.submit(self.dialDtmf, digits)

    def transfer_target(self, number: str) -> str:
        if number.lower().startswith(("sip:", "sips:")):
            return number
        host = f"[{self.peer_host}]" if ":" in self.peer_host else self.peer_host
        return f"sip:{number}@{host}:{self.peer_port}" if self.peer_port else f"sip:{number}@{host}"

    async def transfer(self, number: str) -> None:
        """Blind transfer by REFER; returns once the PBX took the call over (then our leg hangs up)."""
        target = self.transfer_target(number)
        await self._wait_playout()
        self._transfer = asyncio.get_running_loop().create_future()
        try:
            await self.agent.submit(self.xfer, target, pj.CallOpParam(True))
            code = await asyncio.wait_for(self._transfer, TRANSFER_TIMEOUT_SECS)
        except pj.Error as exc:
            raise TransferRefused(f"REFER to {target} could not be sent: {exc.info()}") from None
        except TimeoutError:
            code = 200 if self._transfer_accepted else 408
        if not 200 <= code < 300:
            raise TransferRefused(f"REFER to {target} failed with {code}")
        logger.info(f"sip call {self.pj_id}: transferred to {target} ({code})")
        self.bot_hung_up = True
        with contextlib.suppress(asyncio.TimeoutError):  # the PBX usually ends our leg itself
            await asyncio.wait_for(self._gone.wait(), HANG_UP_WAIT_SECS)
        if not self.disconnected:
            with contextlib.suppress(pj.Error):
                await self.agent.submit(self._hang_up_now)

    async def _wait_playout(self, *, first_audio_secs: float = 3.0, quiet_secs: float = 0.3,
                            limit_secs: float = 20.0) -> None:
        """Until the bot's last words have gone out (a hang-up or REFER must not cut them off)."""
        port = self.audio
        if port is None:
            return
        loop = asyncio.get_running_loop()
        began = quiet_since = loop.time()
        last, heard = port.frames_out, False
        while loop.time() - began < limit_secs and not self.disconnected:
            await asyncio.sleep(0.05)
            now, frames = loop.time(), port.frames_out
            if frames != last or port.queued_secs() > 0:
                last, quiet_since, heard = frames, now, True
            elif (heard and now - quiet_since >= quiet_secs) or (not heard and now - began >= first_audio_secs):
                return
