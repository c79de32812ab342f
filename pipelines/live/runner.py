"""The call runner: an ASGI app (Starlette under uvicorn) that answers calls.

One process holds the models (loaded at start-up, shared by every call) and runs each
call's pipeline as an asyncio task. The runner names no provider: every provider is an
adapter in ``telephony.providers`` (``ADAPTERS``), and each kind of entry point has one
handler here. Nothing gets in unverified (README, "Security"):

- stream providers: the voice webhook is checked with the provider's own signature
  scheme (``telephony.webhooks``) before anything else and answered with the adapter's
  document: a stream URL on ``VOICEBOT_RUNNER_PUBLIC_URL`` carrying a single-use token for
  that call (``telephony.stream_tokens``); a media websocket starts only when the adapter
  accepts its start (that token for the same provider and call id, or, where the
  provider signs nothing, the number's stream secret in the URL);
- room providers: the signed webhook is admitted before the paid room is made;
- browser calls need a single-use test-call link of a staff user who may still see the
  bot's company (``voicebot.call_links``);
- every entry point takes its line from one admission gate (``admission.py``: the runner's
  and the company's lines) through ``CallHub.accept`` (or ``take_line`` where a link, not
  a number, picks the bot); a call that never sends audio ends.

Routes: ``GET /healthz``; each adapter's webhook (POST), media stream (WS) or call page
and offer, and its own extra routes. Calls are stored at hang-up (``LiveCall.run``); a
background loop replays calls spooled while the database was away.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from urllib.parse import urlencode

from django.conf import settings
from loguru import logger
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from pipelines.call_store import replay_spool, spool_dir
from pipelines.config import BotConfig, BotNotFound
from pipelines.live.admission import AdmissionGate, Lease, LineRefused
from pipelines.live.apology import say_and_close
from pipelines.live.db import in_db_thread
from pipelines.live.factory import CallInfo, LiveCall, build_call
from pipelines.model_registry import registry
from telephony import listeners as telephony_listeners
from telephony import outbound, public_url, stream_tokens
from telephony.base import BUSY, UNKNOWN_NUMBER_APOLOGY, CallControl, CallStart, Refusal
from telephony.providers import ADAPTERS, BROWSER, ROOM, STREAM
from telephony.providers.adapter import BadCallStart
from telephony.providers.streams import BadStart, read_start
from telephony.webhooks import Refused, peer, verified_params
from voicebot import call_links
from voicebot.outbound_calls import record_status

WS_POLICY_VIOLATION = 1008  # the close code for every refused stream (RFC 6455)


class CallHub:
    """The runner's state: the admission gate, spent tokens, active calls, the spool loop."""

    def __init__(self):
        self.gate = AdmissionGate()
        self.stream_tokens = stream_tokens.TokenBook()
        self.call_tickets = stream_tokens.SpentNonces(ttl_sec=call_links.MAX_AGE_SEC)
        self.active: dict[str, LiveCall] = {}
        self.finished: list[LiveCall] = []  # recent LiveCalls (tests and /healthz counts)
        self.started = time.time()
        self.ready = False
        self.llm_base_url: str | None = None  # None: voicebot.llm_endpoint.base_url()
        self.resolve_number = BotConfig.for_number  # benchmarks swap in a fixed BotConfig
        self.store_calls = True
        self.room_transport = None  # None: the room adapter's own media client (tests: a stand-in, no cloud)
        self._tasks: set[asyncio.Task] = set()
        self.listeners: list = []  # started entry points with their own sockets (SIP, AudioSocket)

    async def route(self, provider: str, number: str, call_id: str, *,
                    outbound_call: int | None = None) -> BotConfig | Refusal:
        """The bot for a verified call's number (or the outbound call the platform placed), or why it
        gets none (the line is not taken yet)."""
        try:
            if outbound_call is not None:
                config = await in_db_thread(BotConfig.for_outbound_call, outbound_call)
            else:
                config = await in_db_thread(self.resolve_number, number)
        except BotNotFound as exc:
            logger.warning(f"{provider} call {call_id}: {exc}; refusing")
            return Refusal("unknown_number", UNKNOWN_NUMBER_APOLOGY)
        if config.number_provider and config.number_provider != provider:
            logger.warning(f"{provider} call {call_id}: {number} is a {config.number_provider} number; refusing")
            return Refusal("unknown_number", UNKNOWN_NUMBER_APOLOGY)
        try:
            self.gate.check(company_id=config.company_id, company_lines=config.company_max_lines)
        except LineRefused as exc:
            logger.warning(f"{provider} call {call_id} refused: {exc}")
            return Refusal("busy", BUSY)
        return config

    async def accept(self, start: CallStart) -> AcceptedLine | Refusal:
        """``telephony.base.CallRunner``: route the call and take its line, or say why not."""
        config = await self.route(start.provider, start.called_number, start.call_id,
                                  outbound_call=start.outbound_call)
        if isinstance(config, Refusal):
            return config
        return self.take_line(config, start)

    def take_line(self, config: BotConfig, start: CallStart) -> AcceptedLine | Refusal:
        """The line for a call whose bot is already known (by number through ``accept``, or by a link)."""
        try:
            lease = self.admit(config, f"{start.provider}:{start.call_id}")
        except LineRefused as exc:
            logger.warning(f"{start.provider} call {start.call_id} refused: {exc}")
            return Refusal("busy", BUSY)
        return AcceptedLine(self, config, lease, start)

    def admit(self, config: BotConfig, key: str) -> Lease:
        return self.gate.admit(key=key, company_id=config.company_id, company_lines=config.company_max_lines)

    def start_call(self, config: BotConfig, transport, info: CallInfo, lease: Lease, *,
                   control: CallControl | None = None, greet_on_start: bool = True) -> LiveCall:
        """The one way a call starts: built on the admitted line, run as a task, the line freed at its end."""
        call = build_call(config, transport, info, control=control, llm_base_url=self.llm_base_url,
                          greet_on_start=greet_on_start)
        call.lease = lease
        return call

    async def run_call(self, call: LiveCall) -> None:
        key = call.lease.key
        self.active[key] = call
        try:
            await call.run(store=self.store_calls, on_media_end=call.lease.release)
        finally:
            call.lease.release()
            self.active.pop(key, None)
            self.finished = [*self.finished[-49:], call]

    def spawn(self, coro) -> asyncio.Task:
        """Run ``coro`` as a task the hub holds until it ends (asyncio keeps only weak references)."""
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task


def without_unsupported_transfer(config: BotConfig, control: CallControl, *, provider: str, call_id: str):
    """The call's BotConfig with no transfer number when ``control`` cannot transfer.

    The bot then answers a transfer request as a bot without a transfer number does (the
    scenario engine says it can't put the caller through; otherwise the LLM answers) rather
    than promising a transfer and hanging up.
    """
    if control.transfer is not None or not config.transfer_number:
        return config
    logger.warning(f"{provider} call {call_id}: the call cannot be transferred (no call control for it); "
                   f"transfer number {config.transfer_number} is not offered on this call")
    return dataclasses.replace(config, transfer_number="")


class AcceptedLine:
    """A routed call on its admitted line (``telephony.base.AcceptedCall``), run by its entry point."""

    def __init__(self, hub: CallHub, config: BotConfig, lease: Lease, start: CallStart):
        self.hub, self.config, self.lease, self.start = hub, config, lease, start
        self.bot, self.transfer_number = config.slug, config.transfer_number
        self.call: LiveCall | None = None
        self.left = False
        self._greet_pending = False

    async def run(self, transport, control: CallControl, *, greet_on_start: bool = True,
                  observers: tuple = ()) -> None:
        if self.left:  # the caller went before the media started
            self.release()
            return
        start = self.start
        config = without_unsupported_transfer(self.config, control, provider=start.provider, call_id=start.call_id)
        self.call = self.hub.start_call(config, transport, CallInfo(
            transport=start.provider, external_id=start.call_id, from_number=start.from_, to_number=start.to,
            direction="outbound" if config.outbound else "inbound", outbound_call=config.outbound_call_id,
            answered_by=start.answered_by),
            self.lease, control=control, greet_on_start=greet_on_start)
        for observer in observers:  # e.g. the browser call page's states and transcript
            self.call.worker.add_observer(observer)
        if self._greet_pending:
            await self.call.greet()
        await self.hub.run_call(self.call)

    async def greet(self) -> None:
        """The caller can hear now (``greet_on_start=False`` transports): the greeting, once the call is built."""
        if self.call is None:
            self._greet_pending = True
        else:
            await self.call.greet()

    async def caller_left(self) -> None:
        self.left = True
        if self.call is not None:
            self.call.caller_hung_up()
            await self.call.worker.cancel(reason="caller_hangup")

    def release(self) -> None:
        self.lease.release()


def follow_caller(transport, line: AcceptedLine, adapter) -> None:
    """Greet on the adapter's connected event (if any); end the call on its caller-left event."""
    if adapter.connected_event:
        @transport.event_handler(adapter.connected_event)
        async def _connected(*_args):
            await line.greet()

    @transport.event_handler(adapter.left_event)
    async def _left(*_args):
        await line.caller_left()


async def _spool_loop(interval: float):
    while True:
        await asyncio.sleep(interval)
        try:
            stored, remaining = await in_db_thread(replay_spool)
            if stored:
                logger.info(f"replayed {stored} spooled call(s); {remaining} left")
        except Exception:  # noqa: BLE001 - keep looping
            logger.exception("spool replay failed")


def stream_routes(hub: CallHub, adapter) -> list:
    """A media-stream provider: its voice webhook (if it has one) and its media websocket."""

    async def voice_webhook(request: Request):
        """Verified, routed, answered with a stream and its token (or the apology document)."""
        try:
            start = adapter.call_start(await verified_params(request, adapter))
        except Refused as refused:
            return refused.response
        except BadCallStart as exc:
            return Response(str(exc), status_code=400)
        config = await hub.route(start.provider, start.called_number, start.call_id)
        if isinstance(config, Refusal):
            return Response(adapter.apology(config.apology), media_type=adapter.media_type)
        token = stream_tokens.issue(provider=start.provider, call_id=start.call_id, to=start.to,
                                    from_=start.from_, bot=config.slug)
        url = public_url.stream_url(request, adapter.stream_path)
        return Response(adapter.answer(url, token), media_type=adapter.media_type)

    async def media_stream(websocket: WebSocket):
        """Verify the start, admit the call (or speak its apology and hang up), then run it."""
        await websocket.accept()
        try:
            data = await read_start(websocket, adapter.name)
            start = await in_db_thread(adapter.stream_start, websocket, data, hub.stream_tokens)
        except (BadStart, stream_tokens.BadStreamToken) as exc:
            logger.warning(f"{adapter.name} media stream from {peer(websocket)} refused: {exc}")
            with contextlib.suppress(RuntimeError):
                await websocket.close(code=WS_POLICY_VIOLATION)
            return
        control = adapter.control(data, websocket)
        transport = adapter.transport(websocket, data)
        line = await hub.accept(start)
        if isinstance(line, Refusal):
            await say_and_close(transport, line.apology)
            if control.hang_up is not None:
                try:
                    await control.hang_up()
                except Exception:  # noqa: BLE001
                    logger.exception(f"{start.provider} hang-up of {start.call_id} failed")
            return
        follow_caller(transport, line, adapter)
        await line.run(transport, control)

    async def outbound_answer(request: Request):
        """A call the platform placed was answered: verified, its call reference read, admitted, answered
        with a stream whose token names the placed call."""
        try:
            params = await verified_params(request, adapter)
            placed = outbound.read_call_ref(request.query_params.get("call", ""))
            start = adapter.call_start(params)
        except Refused as refused:
            return refused.response
        except outbound.BadCallRef as exc:
            logger.warning(f"{adapter.name} answer URL from {peer(request)} refused: {exc}")
            return Response(str(exc), status_code=403)
        except BadCallStart as exc:
            return Response(str(exc), status_code=400)
        await in_db_thread(record_status, call_id=placed, status="in-progress", external_id=start.call_id)
        config = await hub.route(start.provider, start.called_number, start.call_id, outbound_call=placed)
        if isinstance(config, Refusal):
            await in_db_thread(record_status, call_id=placed, status="failed",
                               note=f"answered, but the runner refused it: {config.reason}")
            return Response(adapter.apology(config.apology), media_type=adapter.media_type)
        token = stream_tokens.issue(provider=start.provider, call_id=start.call_id, to=start.to,
                                    from_=start.from_, bot=config.slug, outbound_call=placed,
                                    answered_by=adapter.machine_verdict(params))
        url = public_url.stream_url(request, adapter.stream_path)
        return Response(adapter.answer(url, token), media_type=adapter.media_type)

    async def status_callback(request: Request):
        """The provider's progress for a placed call (ringing, answered, busy, no-answer, completed...)."""
        try:
            params = await verified_params(request, adapter)
            placed = outbound.read_call_ref(request.query_params.get("call", ""))
        except Refused as refused:
            return refused.response
        except outbound.BadCallRef as exc:
            return Response(str(exc), status_code=403)
        status, external_id = adapter.status_update(params)
        if status:
            await in_db_thread(record_status, call_id=placed, status=status, external_id=external_id)
        return Response(status_code=204)

    routes = [WebSocketRoute(adapter.stream_path, media_stream)]
    if adapter.webhook_path:
        routes.append(Route(adapter.webhook_path, voice_webhook, methods=["POST"]))
    if adapter.outbound_path:
        routes += [Route(adapter.outbound_path, outbound_answer, methods=["POST"]),
                   Route(adapter.status_path, status_callback, methods=["POST"])]
    return routes


def room_routes(hub: CallHub, adapter) -> list:
    """A room provider: its webhook admits the call, then the bot joins the room the caller is bridged into."""

    async def room_webhook(request: Request):
        try:
            params = await verified_params(request, adapter)
            start = adapter.call_start(params)
        except Refused as refused:
            return refused.response
        except BadCallStart as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        line = await hub.accept(start)
        if isinstance(line, Refusal):
            busy = line.reason == "busy"
            return JSONResponse({"error": "all lines are busy" if busy else "unknown number"},
                                status_code=503 if busy else 404)
        try:  # the paid room is made only for a verified, admitted call
            transport, room_url = await adapter.open_room(params, line.config.name, transport=hub.room_transport)
        except adapter.room_errors as exc:
            line.release()
            logger.error(f"{start.provider} call {start.call_id}: {exc}")
            return JSONResponse({"error": str(exc)}, status_code=502)
        follow_caller(transport, line, adapter)
        hub.spawn(line.run(transport, adapter.control(params, transport), greet_on_start=False))
        return JSONResponse({"status": "started", "room_url": room_url, "bot": line.bot})

    return [Route(adapter.webhook_path, room_webhook, methods=["POST"])]


def browser_routes(hub: CallHub, adapter) -> list:
    """Browser calls: the call page, and the WebRTC offer a test-call link lets in."""
    webrtc = None

    async def call_page(request: Request):
        slug = request.path_params["slug"]
        token = request.query_params.get("token", "")
        try:
            ticket = call_links.check(token, slug)
            config = await in_db_thread(BotConfig.for_slug, slug)
        except (call_links.BadCallToken, BotNotFound) as exc:
            return Response(str(exc), status_code=403 if isinstance(exc, call_links.BadCallToken) else 404)
        offer = adapter.offer_path.format(slug=slug) + "?" + urlencode({"token": token})
        return HTMLResponse(adapter.page(config.name, offer, ticket.calls_url))

    async def linked_bot(request: Request, slug: str) -> BotConfig:
        """The bot of a valid, unspent test-call link whose user may still call it; spends the link."""
        try:
            ticket = call_links.check(request.query_params.get("token", ""), slug)
            config = await in_db_thread(BotConfig.for_slug, slug)
        except call_links.BadCallToken as exc:
            raise Refused(Response(str(exc), status_code=403)) from None
        except BotNotFound as exc:
            raise Refused(Response(str(exc), status_code=404)) from None
        if not await in_db_thread(call_links.user_may_call, ticket, config.company_id):
            raise Refused(Response("the staff user of this test-call link may not call this bot", status_code=403))
        if not hub.call_tickets.spend(ticket.nonce):
            raise Refused(Response("this test-call link was already used; open a new one from the bot's admin page",
                                   status_code=403))
        return config

    async def call_offer(request: Request):
        nonlocal webrtc
        from pipecat.transports.smallwebrtc.request_handler import SmallWebRTCRequest, SmallWebRTCRequestHandler

        try:
            offer = await request.json()
            offer = SmallWebRTCRequest.from_dict(offer) if isinstance(offer, dict) else None
        except (ValueError, TypeError, KeyError) as exc:
            return Response(f"bad WebRTC offer: {exc}", status_code=400)
        if offer is None or offer.type != "offer" or not offer.sdp:
            return Response("bad WebRTC offer: expected {\"sdp\": ..., \"type\": \"offer\"}", status_code=400)
        if offer.pc_id:
            return Response("bad WebRTC offer: renegotiation is not supported; start a new call", status_code=400)
        slug = request.path_params["slug"]
        try:
            config = await linked_bot(request, slug)
        except Refused as refused:
            return refused.response
        if problem := adapter.offer_problem(offer.sdp):  # before a line is taken
            return Response(f"bad WebRTC offer: {problem}", status_code=400)
        line = hub.take_line(config, adapter.call_start({"slug": slug}))
        if isinstance(line, Refusal):
            return JSONResponse({"error": adapter.apology(line.apology)}, status_code=503)
        webrtc = webrtc or SmallWebRTCRequestHandler()
        transports: list = []
        connections: list = []

        async def connected(connection):
            transport = adapter.transport(connection)
            follow_caller(transport, line, adapter)
            transports.append(transport)
            connections.append(connection)

        try:
            answer = await webrtc.handle_web_request(offer, connected)
        except Exception as exc:  # noqa: BLE001 - aiortc raises many kinds for a bad SDP
            line.release()
            return Response(f"bad WebRTC offer: {type(exc).__name__}: {str(exc)[:200]}", status_code=400)
        if not transports:
            line.release()
            return Response("the browser call could not be started", status_code=500)
        observers = tuple(adapter.observers(connections[0], line.start.call_id))
        hub.spawn(line.run(transports[0], adapter.control({}, transports[0]), greet_on_start=False,
                           observers=observers))
        return JSONResponse(answer)

    return [Route(adapter.page_path, call_page), Route(adapter.offer_path, call_offer, methods=["POST"])]


HANDLERS = {STREAM: stream_routes, ROOM: room_routes, BROWSER: browser_routes}  # one handler per kind


async def _refuse_stream(websocket: WebSocket):
    await websocket.close(code=WS_POLICY_VIOLATION)  # a media stream no adapter serves


def create_app(hub: CallHub | None = None, *, preload: bool = True, spool_replay_secs: float | None = None,
               listeners=None) -> Starlette:
    """``listeners``: a callable(hub) -> [``telephony.listeners.Listener``] started with the app
    (``runbots``: ``telephony.listeners.from_settings``); None: none (tests, benchmarks)."""
    hub = hub or CallHub()

    async def healthz(request: Request):
        spooled = len(list(spool_dir().glob("*.json"))) if spool_dir().exists() else 0
        return JSONResponse({
            "ok": hub.ready, "active_calls": hub.gate.active, "uptime_s": round(time.time() - hub.started),
            "models_loaded": registry.loads, "spooled_calls": spooled,
            **{listener.name: listener.status() for listener in hub.listeners},
        }, status_code=200 if hub.ready else 503)

    async def lifespan(app):
        if preload:
            await asyncio.to_thread(registry.preload)
        if not settings.TELEPHONY_VERIFY_SIGNATURES:
            logger.warning("provider signatures are NOT verified (VOICEBOT_VERIFY_PROVIDER_SIGNATURES=false): "
                           "local development only")
        for listener in (listeners(hub) if listeners else []):
            await listener.start()  # a port already taken fails the start-up, loudly
            hub.listeners.append(listener)
        hub.ready = True
        interval = spool_replay_secs if spool_replay_secs is not None else settings.CALLS_SPOOL_REPLAY_SECS
        task = asyncio.create_task(_spool_loop(interval))
        try:
            yield
        finally:
            task.cancel()
            for call in list(hub.active.values()):
                with contextlib.suppress(Exception):
                    await call.worker.cancel(reason="runner shutdown")
            for listener in hub.listeners:
                with contextlib.suppress(Exception):
                    await listener.stop()
            hub.listeners.clear()

    routes = [Route("/healthz", healthz)]
    for adapter in ADAPTERS.values():
        routes += [*HANDLERS[adapter.kind](hub, adapter), *adapter.routes]
    routes += telephony_listeners.routes(hub)  # PBX streams that route through hub.accept themselves
    routes += [WebSocketRoute(path, _refuse_stream)  # after every adapter's: refused, not merely unrouted
               for path in ("/telephony/{provider}/media", "/telephony/{provider}/media/{secret}")]
    app = Starlette(routes=routes, lifespan=contextlib.asynccontextmanager(lifespan))
    app.state.hub = hub
    return app
