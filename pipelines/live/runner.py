"""The call runner: an ASGI app (Starlette under uvicorn) that answers calls.

One process holds the models (loaded at start-up, shared by every call) and
runs each call's pipeline as an asyncio task. Nothing gets in unverified
(README, "Security"):

- provider webhooks are checked with the provider's own signature scheme
  (``signatures.py``) before anything else, and answer with a stream URL on
  ``VOICEBOT_RUNNER_PUBLIC_URL`` carrying a single-use token for that call
  (``stream_tokens.py``); a media websocket starts only with such a token for
  the same provider and call id (Exotel, which signs nothing: the number's
  stream secret in the URL);
- browser calls need a single-use test-call link of a staff user who may still
  see the bot's company (``voicebot.call_links``);
- every entry point takes its line from one admission gate (``admission.py``:
  the runner's and the company's lines); a call that never sends audio ends.

Routes: ``GET /healthz``; ``POST /telephony/{twilio/voice,telnyx/voice,plivo/answer,daily/dialin}``
(webhooks); ``WS /telephony/{twilio,telnyx,plivo}/media``, ``WS /telephony/exotel/media/{secret}``
(media streams); ``/telephony/plivo/transfer`` (the XML a Plivo transfer fetches);
``/call/{slug}`` and ``/call/{slug}/offer`` (browser calls). Calls are stored at hang-up
(``LiveCall.run``); a background loop replays calls spooled while the database was away.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from urllib.parse import parse_qsl, urlencode

import httpx
from django.conf import settings
from django.core import signing
from loguru import logger
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from pipelines.call_store import replay_spool, spool_dir
from pipelines.config import BotConfig, BotNotFound
from pipelines.live import browser, daily, provider_control, providers, public_url, signatures, stream_tokens, twilio
from pipelines.live.admission import AdmissionGate, Lease, LineRefused
from pipelines.live.db import in_db_thread
from pipelines.live.factory import CallInfo, LiveCall, build_call
from pipelines.model_registry import registry
from telephony.base import CallControl, CallStart, Refusal
from voicebot import call_links

BUSY = "Sorry, all our lines are busy. Please call again in a few minutes."
MAX_WEBHOOK_BYTES = 64 * 1024
WS_POLICY_VIOLATION = 1008  # the close code for every refused stream (RFC 6455)
XML = "application/xml"


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
        self.daily_transport = daily.daily_transport  # the Daily cloud is reached only through this

    async def route(self, provider: str, number: str, call_id: str) -> BotConfig | Refusal:
        """The bot for a verified call's number, or why it gets none (the line is not taken yet)."""
        try:
            config = await in_db_thread(self.resolve_number, number)
        except BotNotFound as exc:
            logger.warning(f"{provider} call {call_id}: {exc}; refusing")
            return Refusal("unknown_number", twilio.UNKNOWN_NUMBER_APOLOGY)
        if config.number_provider and config.number_provider != provider:
            logger.warning(f"{provider} call {call_id}: {number} is a {config.number_provider} number; refusing")
            return Refusal("unknown_number", twilio.UNKNOWN_NUMBER_APOLOGY)
        try:
            self.gate.check(company_id=config.company_id, company_lines=config.company_max_lines)
        except LineRefused as exc:
            logger.warning(f"{provider} call {call_id} refused: {exc}")
            return Refusal("busy", BUSY)
        return config

    async def accept(self, start: CallStart) -> "AcceptedLine | Refusal":
        """``telephony.base.CallRunner``: route the call and take its line, or say why not."""
        config = await self.route(start.provider, start.called_number, start.call_id)
        if isinstance(config, Refusal):
            return config
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


class AcceptedLine:
    """A routed call on its admitted line (``telephony.base.AcceptedCall``), run by its entry point."""

    def __init__(self, hub: CallHub, config: BotConfig, lease: Lease, start: CallStart):
        self.hub, self.config, self.lease, self.start = hub, config, lease, start
        self.bot, self.transfer_number = config.slug, config.transfer_number
        self.call: LiveCall | None = None
        self.left = False

    async def run(self, transport, control: CallControl, *, greet_on_start: bool = True) -> None:
        if self.left:  # the caller went before the media started
            self.release()
            return
        start = self.start
        config = provider_control.without_unsupported_transfer(self.config, control, provider=start.provider,
                                                               call_id=start.call_id)
        self.call = self.hub.start_call(config, transport, CallInfo(
            transport=start.provider, external_id=start.call_id, from_number=start.from_, to_number=start.to),
            self.lease, control=control, greet_on_start=greet_on_start)
        await self.hub.run_call(self.call)

    async def caller_left(self) -> None:
        self.left = True
        if self.call is not None:
            self.call.caller_hung_up()
            await self.call.worker.cancel(reason="caller_hangup")

    def release(self) -> None:
        self.lease.release()


async def _spool_loop(interval: float):
    while True:
        await asyncio.sleep(interval)
        try:
            stored, remaining = await in_db_thread(replay_spool)
            if stored:
                logger.info(f"replayed {stored} spooled call(s); {remaining} left")
        except Exception:  # noqa: BLE001 - keep looping
            logger.exception("spool replay failed")


def _peer(connection) -> str:
    return connection.client.host if connection.client else "?"


class Refused(Exception):
    """A webhook that gets an HTTP error answer (``response``) instead of a call."""

    def __init__(self, response: Response):
        self.response = response


async def verified_webhook(request: Request, provider: str) -> tuple[dict, bytes]:
    """The webhook's parameters (form or JSON object), once its provider signature checks out.

    Raises ``Refused``: 413 too large, 400 unreadable, 403 unsigned or badly signed.
    """
    body = await request.body()
    if len(body) > MAX_WEBHOOK_BYTES:
        raise Refused(Response("webhook body too large", status_code=413))
    is_json = "json" in request.headers.get("content-type", "")
    try:
        text = body.decode("utf-8")
        params = json.loads(text or "{}") if is_json else dict(parse_qsl(text, keep_blank_values=True))
    except (UnicodeDecodeError, ValueError):
        raise Refused(Response(f"unreadable {provider} webhook body", status_code=400)) from None
    if not isinstance(params, dict):
        raise Refused(Response(f"{provider} webhook body must be a JSON object or a form", status_code=400))
    if settings.TELEPHONY_VERIFY_SIGNATURES:
        signed = signatures.SignedRequest(method=request.method, url=public_url.request_url(request),
                                          headers=request.headers, body=body, form=None if is_json else params)
        try:
            signatures.verify(provider, signed)
        except signatures.SignatureError as exc:
            logger.warning(f"{provider} webhook from {_peer(request)} refused: {exc}")
            raise Refused(Response(f"{provider} signature check failed", status_code=403)) from None
    return params, body


def create_app(hub: CallHub | None = None, *, preload: bool = True, spool_replay_secs: float | None = None) -> Starlette:
    hub = hub or CallHub()
    webrtc = None

    async def healthz(request: Request):
        spooled = len(list(spool_dir().glob("*.json"))) if spool_dir().exists() else 0
        return JSONResponse({
            "ok": hub.ready, "active_calls": hub.gate.active, "uptime_s": round(time.time() - hub.started),
            "models_loaded": registry.loads, "spooled_calls": spooled,
        }, status_code=200 if hub.ready else 503)

    async def routed(provider: str, to: str, call_id: str) -> BotConfig | str:
        """The bot for a verified webhook's number, or the apology to answer with."""
        config = await hub.route(provider, to, call_id)
        return config.apology if isinstance(config, Refusal) else config

    def voice_webhook(provider: str):
        """The webhook a provider calls when a call comes in: verified, routed, answered with a stream and its token."""
        spec = providers.VOICE_WEBHOOKS[provider]

        async def answer(request: Request):
            try:
                form, _ = await verified_webhook(request, provider)
            except Refused as refused:
                return refused.response
            to, from_ = form.get("To", ""), form.get("From", "")
            call_id = next((form[name] for name in spec.call_id_fields if form.get(name)), "")
            if not call_id:
                return Response(f"{spec.call_id_fields[-1]} missing", status_code=400)
            config = await routed(provider, to, call_id)
            if isinstance(config, str):
                return Response(spec.apology(config), media_type=XML)
            token = stream_tokens.issue(provider=provider, call_id=call_id, to=to, from_=from_, bot=config.slug)
            url = public_url.stream_url(request, f"/telephony/{provider}/media")
            return Response(spec.stream(url, token), media_type=XML)

        return answer

    async def plivo_transfer(request: Request):
        """The XML Plivo fetches for a transfer (``aleg_url``): dial the number the signed token names."""
        try:
            number = provider_control.transfer_target(request.query_params.get("token", ""))
        except signing.BadSignature:
            logger.warning("plivo transfer URL with a missing, forged or expired token")
            return Response("invalid transfer token", status_code=403)
        return Response(provider_control.plivo_dial_xml(number), media_type=XML)

    async def authorised_stream(websocket: WebSocket, provider: str, data: dict):
        """(config, to, from) of a stream whose token (or Exotel secret) checks out; raises to refuse it."""
        call_id = data.get("call_id") or ""
        if provider == "exotel":
            config = await in_db_thread(BotConfig.for_stream_secret, "exotel", websocket.path_params.get("secret", ""))
            return config, config.number, data.get("from") or ""
        token = ((data.get("body") or {}).get("token") if provider == "twilio"
                 else websocket.query_params.get("token", ""))
        grant = hub.stream_tokens.redeem(token or "", provider=provider, call_id=call_id)
        return grant, grant.to, grant.from_

    async def media_stream(websocket: WebSocket):
        """Every provider's media websocket: verify, admit, then run the call."""
        provider = websocket.path_params["provider"]
        if provider not in providers.PROVIDERS or (provider == "exotel") != ("secret" in websocket.path_params):
            await websocket.close(code=WS_POLICY_VIOLATION)
            return
        await websocket.accept()
        try:
            data = await providers.read_start(websocket, provider)
            grant, to, from_ = await authorised_stream(websocket, provider, data)
        except (providers.BadStart, stream_tokens.BadStreamToken, BotNotFound) as exc:
            logger.warning(f"{provider} media stream from {_peer(websocket)} refused: {exc}")
            with contextlib.suppress(RuntimeError):
                await websocket.close(code=WS_POLICY_VIOLATION)
            return
        call_id = data.get("call_id") or ""
        control = (twilio.twilio_control(call_id) if provider == "twilio" else provider_control.control_for(
            provider, call_id, websocket,
            transfer_url=lambda t: public_url.http_url(websocket, "/telephony/plivo/transfer") + "?" + urlencode({"token": t})))
        transport = providers.websocket_transport(websocket, providers.serializer_for(provider, data))
        apology = None
        try:
            config = grant if isinstance(grant, BotConfig) else await in_db_thread(hub.resolve_number, to)
            lease = hub.admit(config, f"{provider}:{call_id or data.get('stream_id')}")
        except BotNotFound as exc:  # the bot was switched off since the webhook
            logger.warning(f"{provider} call {call_id}: {exc}; apologising and hanging up")
            apology = twilio.UNKNOWN_NUMBER_APOLOGY
        except LineRefused as exc:
            logger.warning(f"{provider} call {call_id} refused: {exc}")
            apology = BUSY
        if apology is not None:
            await providers.say_and_close(transport, apology)
            if control.hang_up is not None:
                try:
                    await control.hang_up()
                except Exception:  # noqa: BLE001
                    logger.exception(f"{provider} hang-up of {call_id} failed")
            return
        config = provider_control.without_unsupported_transfer(config, control, provider=provider, call_id=call_id)
        call = hub.start_call(config, transport, CallInfo(
            transport=provider, external_id=call_id or data.get("stream_id") or "", from_number=from_, to_number=to),
            lease, control=control)

        @transport.event_handler("on_client_disconnected")
        async def _gone(_transport, _ws):
            call.caller_hung_up()
            await call.worker.cancel(reason="caller_hangup")

        await hub.run_call(call)

    async def call_page(request: Request):
        slug = request.path_params["slug"]
        token = request.query_params.get("token", "")
        try:
            call_links.check(token, slug)
            config = await in_db_thread(BotConfig.for_slug, slug)
        except (call_links.BadCallToken, BotNotFound) as exc:
            return Response(str(exc), status_code=403 if isinstance(exc, call_links.BadCallToken) else 404)
        offer = f"/call/{slug}/offer?{urlencode({'token': token})}"
        return HTMLResponse(browser.page(config.name, offer))

    async def browser_ticket(request: Request, slug: str) -> BotConfig:
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
        from pipecat.transports.base_transport import TransportParams
        from pipecat.transports.smallwebrtc.request_handler import SmallWebRTCRequest, SmallWebRTCRequestHandler
        from pipecat.transports.smallwebrtc.transport import SmallWebRTCTransport

        try:
            offer = await request.json()
            offer = SmallWebRTCRequest.from_dict(offer) if isinstance(offer, dict) else None
        except (ValueError, TypeError, KeyError) as exc:
            return Response(f"bad WebRTC offer: {exc}", status_code=400)
        if offer is None or offer.type != "offer" or not offer.sdp:
            return Response("bad WebRTC offer: expected {\"sdp\": ..., \"type\": \"offer\"}", status_code=400)
        if offer.pc_id:
            return Response("bad WebRTC offer: renegotiation is not supported; start a new call", status_code=400)
        try:
            config = await browser_ticket(request, request.path_params["slug"])
        except Refused as refused:
            return refused.response
        if problem := browser.offer_problem(offer.sdp):  # before a line is taken
            return Response(f"bad WebRTC offer: {problem}", status_code=400)
        try:
            lease = hub.admit(config, f"webrtc:{id(offer)}:{time.monotonic_ns()}")
        except LineRefused as exc:
            logger.warning(f"browser call to {config.slug} refused: {exc}")
            return JSONResponse({"error": BUSY}, status_code=503)
        webrtc = webrtc or SmallWebRTCRequestHandler()
        started: list[LiveCall] = []

        async def start_call(connection):
            transport = SmallWebRTCTransport(connection, TransportParams(audio_in_enabled=True, audio_out_enabled=True))
            call = hub.start_call(config, transport, CallInfo(transport="webrtc", external_id=f"webrtc-{connection.pc_id}"),
                                  lease, greet_on_start=False)

            @transport.event_handler("on_client_connected")
            async def _connected(_transport, _client):
                await call.greet()

            @transport.event_handler("on_client_disconnected")
            async def _gone(_transport, _client):
                call.caller_hung_up()
                await call.worker.cancel(reason="caller_hangup")

            started.append(call)

        try:
            answer = await webrtc.handle_web_request(offer, start_call)
        except Exception as exc:  # noqa: BLE001 - aiortc raises many kinds for a bad SDP
            lease.release()
            for call in started:
                await call.worker.cancel(reason="bad offer")
            return Response(f"bad WebRTC offer: {type(exc).__name__}: {str(exc)[:200]}", status_code=400)
        if not started:
            lease.release()
            return Response("the browser call could not be started", status_code=500)
        asyncio.create_task(hub.run_call(started[0]))
        return JSONResponse(answer)

    async def daily_dialin(request: Request):
        try:
            params, _ = await verified_webhook(request, "daily")
            dialin = daily.DialIn.from_webhook(params)
        except Refused as refused:
            return refused.response
        except (ValueError, TypeError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        config = await routed("daily", dialin.to, dialin.call_id)
        if isinstance(config, str):
            status = 503 if config == BUSY else 404
            return JSONResponse({"error": "all lines are busy" if status == 503 else "unknown number"}, status_code=status)
        try:
            lease = hub.admit(config, f"daily:{dialin.call_id}")
        except LineRefused as exc:
            return JSONResponse({"error": str(exc)}, status_code=503)
        try:  # the paid room is made only for a verified, admitted call
            room_url, token = await daily.create_room(dialin)
            transport = hub.daily_transport(room_url, token, dialin, config.name)
        except (daily.DailyError, httpx.HTTPError, ImportError) as exc:
            lease.release()
            logger.error(f"daily dial-in {dialin.call_id}: {exc}")
            return JSONResponse({"error": str(exc)}, status_code=502)
        call = hub.start_call(config, transport, CallInfo(
            transport="daily", external_id=dialin.call_id, from_number=dialin.from_, to_number=dialin.to),
            lease, greet_on_start=False)

        @transport.event_handler("on_dialin_ready")
        async def _ready(_transport, _cdata):
            logger.info(f"daily dial-in {dialin.call_id} ready in {room_url}")

        @transport.event_handler("on_first_participant_joined")
        async def _joined(_transport, _participant):
            await call.greet()

        @transport.event_handler("on_participant_left")
        async def _left(_transport, _participant, _reason):
            call.caller_hung_up()
            await call.worker.cancel(reason="caller_hangup")

        asyncio.create_task(hub.run_call(call))
        return JSONResponse({"status": "started", "room_url": room_url, "bot": config.slug})

    async def lifespan(app):
        if preload:
            await asyncio.to_thread(registry.preload)
        if not settings.TELEPHONY_VERIFY_SIGNATURES:
            logger.warning("provider signatures are NOT verified (VOICEBOT_VERIFY_PROVIDER_SIGNATURES=false): "
                           "local development only")
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

    app = Starlette(routes=[
        Route("/healthz", healthz),
        *(Route(spec.path, voice_webhook(provider), methods=["POST"])
          for provider, spec in providers.VOICE_WEBHOOKS.items()),
        Route("/telephony/plivo/transfer", plivo_transfer, methods=["GET", "POST"]),
        WebSocketRoute("/telephony/{provider}/media", media_stream),
        WebSocketRoute("/telephony/{provider}/media/{secret}", media_stream),
        Route("/telephony/daily/dialin", daily_dialin, methods=["POST"]),
        Route("/call/{slug}", call_page),
        Route("/call/{slug}/offer", call_offer, methods=["POST"]),
    ], lifespan=contextlib.asynccontextmanager(lifespan))
    app.state.hub = hub
    return app
