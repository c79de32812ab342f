"""The call runner: an ASGI app (Starlette under uvicorn) that answers calls.

One process holds the models (loaded at start-up, shared by every call) and
runs each call's pipeline as an asyncio task. Routes:

- ``GET /healthz``: JSON (models, active calls, spooled records);
- ``POST /telephony/twilio/voice``: Twilio's voice webhook -> TwiML that connects a media stream;
- ``WS /telephony/twilio/media``: Twilio Media Streams -> a live call;
- ``POST /telephony/plivo/answer``, ``WS /telephony/{telnyx,plivo,exotel}/media``: the
  other providers' streams (``providers.py``), hung up and transferred through
  ``provider_control.py``; ``/telephony/plivo/transfer``: the XML a Plivo transfer fetches;
- ``POST /telephony/daily/dialin``, ``/call/{slug}``: Daily SIP dial-in, browser calls.

Calls are stored at hang-up (``LiveCall.run``); a background loop replays
calls spooled while the database was away.
"""

from __future__ import annotations

import asyncio
import audioop
import base64
import contextlib
import json
import time
from urllib.parse import parse_qs, urlencode

import httpx
import numpy as np
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
from pipelines.live import browser, daily, provider_control, providers, twilio
from pipelines.live.db import in_db_thread
from pipelines.live.factory import CallInfo, build_call
from pipelines.model_registry import registry
from voicebot import call_links

BUSY = "Sorry, all our lines are busy. Please call again in a few minutes."


class CallHub:
    """The runner's state: active calls, start-up time, the spool loop."""

    def __init__(self):
        self.active: dict[str, object] = {}
        self.finished: list[object] = []  # recent LiveCalls (tests and /healthz counts)
        self.started = time.time()
        self.ready = False
        self.llm_base_url: str | None = None  # None: voicebot.llm_endpoint.base_url()
        self.resolve_number = _config_for_number  # benchmarks swap in a fixed BotConfig
        self.store_calls = True
        self.daily_transport = daily.daily_transport  # the Daily cloud is reached only through this

    def full(self) -> bool:
        """At capacity: new calls are refused politely (each call costs CPU on the shared cores)."""
        return len(self.active) >= settings.CALLS_MAX_CONCURRENT

    def http_url(self, connection, path: str) -> str:
        """An absolute http(s) URL on this runner as the provider reached it (request or websocket)."""
        secure = connection.url.scheme in ("https", "wss") or connection.headers.get("x-forwarded-proto") == "https"
        host = connection.headers.get("host", f"{settings.RUNNER_HOST}:{settings.RUNNER_PORT}")
        return f"{'https' if secure else 'http'}://{host}{path}"

    def stream_url(self, request: Request, path: str) -> str:
        scheme = "wss" if request.url.scheme == "https" or request.headers.get("x-forwarded-proto") == "https" else "ws"
        host = request.headers.get("host", f"{settings.RUNNER_HOST}:{settings.RUNNER_PORT}")
        return f"{scheme}://{host}{path}"

    async def run_call(self, key: str, call) -> None:
        self.active[key] = call
        try:
            await call.run(store=self.store_calls)
        finally:
            self.active.pop(key, None)
            self.finished = [*self.finished[-49:], call]


async def _spool_loop(interval: float):
    while True:
        await asyncio.sleep(interval)
        try:
            stored, remaining = await in_db_thread(replay_spool)
            if stored:
                logger.info(f"replayed {stored} spooled call(s); {remaining} left")
        except Exception:  # noqa: BLE001 - keep looping
            logger.exception("spool replay failed")


def _config_for_number(number: str) -> BotConfig:
    return BotConfig.for_number(number)


async def speak_twilio(websocket: WebSocket, stream_sid: str, text: str) -> None:
    """Say ``text`` on a Twilio stream with Piper (no pipeline needed)."""
    voice = registry.piper("")
    pcm = np.concatenate([np.frombuffer(c.audio_int16_bytes, dtype=np.int16) for c in voice.synthesize(text)])
    rate = voice.config.sample_rate
    n = int(len(pcm) * 8000 / rate)
    pcm8 = np.interp(np.linspace(0, len(pcm) - 1, n), np.arange(len(pcm)), pcm).astype(np.int16).tobytes()
    ulaw = audioop.lin2ulaw(pcm8, 2)
    for i in range(0, len(ulaw), 160):
        payload = base64.b64encode(ulaw[i:i + 160]).decode()
        await websocket.send_text(json.dumps({"event": "media", "streamSid": stream_sid, "media": {"payload": payload}}))
        await asyncio.sleep(0.01)
    await websocket.send_text(json.dumps({"event": "mark", "streamSid": stream_sid, "mark": {"name": "apology-end"}}))


def create_app(hub: CallHub | None = None, *, preload: bool = True, spool_replay_secs: float | None = None) -> Starlette:
    hub = hub or CallHub()

    async def healthz(request: Request):
        spooled = len(list(spool_dir().glob("*.json"))) if spool_dir().exists() else 0
        return JSONResponse({
            "ok": hub.ready, "active_calls": len(hub.active), "uptime_s": round(time.time() - hub.started),
            "models_loaded": registry.loads, "spooled_calls": spooled,
        }, status_code=200 if hub.ready else 503)

    async def twilio_voice(request: Request):
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        to, from_, call_sid = form.get("To", ""), form.get("From", ""), form.get("CallSid", "")
        if hub.full():
            logger.warning(f"twilio call {call_sid} refused: {len(hub.active)} calls already active")
            return Response(twilio.apology_twiml(BUSY), media_type="application/xml")
        try:
            config = await in_db_thread(hub.resolve_number, to)
        except BotNotFound as exc:
            logger.warning(f"twilio call {call_sid} from {from_}: {exc}; apologising and hanging up")
            return Response(twilio.apology_twiml(), media_type="application/xml")
        url = hub.stream_url(request, "/telephony/twilio/media")
        params = {"to": to, "from": from_, "call_sid": call_sid, "bot": config.slug}
        return Response(twilio.stream_twiml(url, params), media_type="application/xml")

    async def twilio_media(websocket: WebSocket):
        from pipecat.serializers.twilio import TwilioFrameSerializer
        from pipecat.transports.websocket.fastapi import FastAPIWebsocketParams, FastAPIWebsocketTransport

        await websocket.accept()
        try:
            start = await twilio.read_start(websocket)
        except (ValueError, json.JSONDecodeError) as exc:
            logger.warning(f"twilio media stream rejected: {exc}")
            await websocket.close(code=1008)
            return
        info = start.get("start", {})
        stream_sid = info.get("streamSid") or start.get("streamSid", "")
        call_sid = info.get("callSid", "")
        custom = info.get("customParameters", {}) or {}
        to, from_ = custom.get("to", ""), custom.get("from", "")
        try:
            config = await in_db_thread(hub.resolve_number, to)
        except BotNotFound as exc:
            logger.warning(f"twilio stream {call_sid} from {from_}: {exc}; apologising and hanging up")
            await speak_twilio(websocket, stream_sid, twilio.UNKNOWN_NUMBER_APOLOGY)
            try:
                await twilio.twilio_control(call_sid).hang_up()
            except Exception:  # noqa: BLE001
                logger.exception(f"twilio hang-up of {call_sid} failed")
            await websocket.close()
            return
        serializer = TwilioFrameSerializer(
            stream_sid=stream_sid, call_sid=call_sid,
            params=TwilioFrameSerializer.InputParams(auto_hang_up=False),
        )
        transport = FastAPIWebsocketTransport(websocket, FastAPIWebsocketParams(
            audio_in_enabled=True, audio_out_enabled=True, add_wav_header=False, serializer=serializer))
        call = build_call(config, transport, CallInfo(
            transport="twilio", external_id=call_sid, from_number=from_, to_number=to),
            control=twilio.twilio_control(call_sid), llm_base_url=hub.llm_base_url)

        @transport.event_handler("on_client_disconnected")
        async def _gone(_transport, _ws):
            call.caller_hung_up()
            await call.worker.cancel(reason="caller_hangup")

        await hub.run_call(call_sid or stream_sid, call)

    async def provider_media(websocket: WebSocket):
        provider = websocket.path_params["provider"]
        if provider not in providers.PROVIDERS:
            await websocket.close(code=1008)
            return
        await websocket.accept()
        try:
            data = await providers.parse_start(websocket, provider)
        except ValueError as exc:
            logger.warning(f"{provider} media stream rejected: {exc}")
            await websocket.close(code=1008)
            return
        call_id = data.get("call_id") or ""

        def plivo_transfer_url(token: str) -> str:
            return hub.http_url(websocket, "/telephony/plivo/transfer") + "?" + urlencode({"token": token})

        control = provider_control.control_for(provider, call_id, websocket, transfer_url=plivo_transfer_url)
        transport = providers.websocket_transport(websocket, providers.serializer_for(provider, data))
        try:
            config = await in_db_thread(hub.resolve_number, data["to"])
        except BotNotFound as exc:
            providers.log_rejected(provider, data, exc)
            await providers.say_and_close(transport, twilio.UNKNOWN_NUMBER_APOLOGY)
            if control.hang_up is not None:
                try:
                    await control.hang_up()
                except Exception:  # noqa: BLE001
                    logger.exception(f"{provider} hang-up of {call_id} failed")
            return
        config = provider_control.without_unsupported_transfer(config, control, provider=provider, call_id=call_id)
        call = build_call(config, transport, CallInfo(
            transport=provider, external_id=call_id or data.get("stream_id") or "",
            from_number=data["from"], to_number=data["to"]), control=control, llm_base_url=hub.llm_base_url)

        @transport.event_handler("on_client_disconnected")
        async def _gone(_transport, _ws):
            call.caller_hung_up()
            await call.worker.cancel(reason="caller_hangup")

        await hub.run_call(call.info.external_id or str(id(call)), call)

    async def plivo_answer(request: Request):
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        to, from_ = form.get("To", ""), form.get("From", "")
        try:
            await in_db_thread(hub.resolve_number, to)
        except BotNotFound as exc:
            logger.warning(f"plivo call {form.get('CallUUID')} from {from_}: {exc}; apologising")
            return Response('<?xml version="1.0" encoding="UTF-8"?><Response><Speak>'
                            f"{twilio.UNKNOWN_NUMBER_APOLOGY}</Speak><Hangup/></Response>", media_type="application/xml")
        url = hub.stream_url(request, "/telephony/plivo/media") + "?" + urlencode({"to": to, "from": from_})
        return Response(providers.plivo_answer_xml(url), media_type="application/xml")

    async def plivo_transfer(request: Request):
        """The XML Plivo fetches for a transfer (``aleg_url``): dial the number the signed token names."""
        try:
            number = provider_control.transfer_target(request.query_params.get("token", ""))
        except signing.BadSignature:
            logger.warning("plivo transfer URL with a missing, forged or expired token")
            return Response("invalid transfer token", status_code=403)
        return Response(provider_control.plivo_dial_xml(number), media_type="application/xml")

    webrtc = None

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

    async def call_offer(request: Request):
        nonlocal webrtc
        from pipecat.transports.base_transport import TransportParams
        from pipecat.transports.smallwebrtc.request_handler import SmallWebRTCRequest, SmallWebRTCRequestHandler
        from pipecat.transports.smallwebrtc.transport import SmallWebRTCTransport

        slug = request.path_params["slug"]
        try:
            call_links.check(request.query_params.get("token", ""), slug)
            config = await in_db_thread(BotConfig.for_slug, slug)
        except (call_links.BadCallToken, BotNotFound) as exc:
            return Response(str(exc), status_code=403 if isinstance(exc, call_links.BadCallToken) else 404)
        try:
            offer = SmallWebRTCRequest.from_dict(await request.json())
        except (ValueError, TypeError) as exc:
            return Response(f"bad WebRTC offer: {exc}", status_code=400)
        webrtc = webrtc or SmallWebRTCRequestHandler()

        async def start_call(connection):
            transport = SmallWebRTCTransport(connection, TransportParams(audio_in_enabled=True, audio_out_enabled=True))
            call = build_call(config, transport, CallInfo(transport="webrtc", external_id=f"webrtc-{connection.pc_id}"),
                              llm_base_url=hub.llm_base_url, greet_on_start=False)

            @transport.event_handler("on_client_connected")
            async def _connected(_transport, _client):
                await call.greet()

            @transport.event_handler("on_client_disconnected")
            async def _gone(_transport, _client):
                call.caller_hung_up()
                await call.worker.cancel(reason="caller_hangup")

            asyncio.create_task(hub.run_call(call.info.external_id, call))

        answer = await webrtc.handle_web_request(offer, start_call)
        return JSONResponse(answer)

    async def daily_dialin(request: Request):
        try:
            dialin = daily.DialIn.from_webhook(await request.json())
        except (ValueError, TypeError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        try:
            config = await in_db_thread(hub.resolve_number, dialin.to)
        except BotNotFound as exc:
            logger.warning(f"daily dial-in {dialin.call_id} from {dialin.from_}: {exc}; refused")
            return JSONResponse({"error": str(exc)}, status_code=404)
        try:
            room_url, token = await daily.create_room(dialin)
            transport = hub.daily_transport(room_url, token, dialin, config.name)
        except (daily.DailyError, httpx.HTTPError, ImportError) as exc:
            logger.error(f"daily dial-in {dialin.call_id}: {exc}")
            return JSONResponse({"error": str(exc)}, status_code=502)
        call = build_call(config, transport, CallInfo(
            transport="daily", external_id=dialin.call_id, from_number=dialin.from_, to_number=dialin.to),
            llm_base_url=hub.llm_base_url, greet_on_start=False)

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

        asyncio.create_task(hub.run_call(dialin.call_id, call))
        return JSONResponse({"status": "started", "room_url": room_url, "bot": config.slug})

    async def lifespan(app):
        if preload:
            await asyncio.to_thread(registry.preload)
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
        Route("/telephony/twilio/voice", twilio_voice, methods=["POST"]),
        WebSocketRoute("/telephony/twilio/media", twilio_media),
        Route("/telephony/plivo/answer", plivo_answer, methods=["POST"]),
        Route("/telephony/plivo/transfer", plivo_transfer, methods=["GET", "POST"]),
        WebSocketRoute("/telephony/{provider}/media", provider_media),
        Route("/telephony/daily/dialin", daily_dialin, methods=["POST"]),
        Route("/call/{slug}", call_page),
        Route("/call/{slug}/offer", call_offer, methods=["POST"]),
    ], lifespan=contextlib.asynccontextmanager(lifespan))
    app.state.hub = hub
    return app
