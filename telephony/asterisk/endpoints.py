"""The two Asterisk entry points: the chan_websocket media websocket and the AudioSocket TCP server.

Both check the peer first (``ASTERISK_ALLOWED_PEERS``), then the number's stream secret
(the websocket's ``secret`` URI parameter, or the AudioSocket UUID derived from it), then
ask the runner for the call (``telephony.base.CallRunner.accept``). A refused call is hung
up at once (``HANGUP`` / ``0x00``) and the PBX goes on with its dialplan.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid

from loguru import logger
from pipecat.transports.websocket.fastapi import FastAPIWebsocketParams, FastAPIWebsocketTransport
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from telephony.asterisk.access import PROVIDER, number_for_secret, number_for_uuid, peer_allowed
from telephony.asterisk.audiosocket import (
    AudioSocketConnection,
    AudioSocketError,
    AudioSocketTransport,
    read_message,
    read_uuid,
)
from telephony.asterisk.chan_websocket import AsteriskFrameSerializer, ControlError, MediaStart, parse_control
from telephony.base import CallControl, CallRunner, CallStart, Refusal

WS_POLICY_VIOLATION = 1008  # RFC 6455: the close code for every refused stream
START_TIMEOUT_SECS = 10.0
SUBPROTOCOL = "media"  # websocket_client.conf "protocols = media" (the documented example)


def _peer(connection) -> str:
    return connection.client.host if connection.client else ""


async def _close(websocket: WebSocket, code: int) -> None:
    with contextlib.suppress(RuntimeError, WebSocketDisconnect, OSError):
        await websocket.close(code=code)


async def _read_media_start(websocket: WebSocket) -> MediaStart:
    message = await asyncio.wait_for(websocket.receive(), START_TIMEOUT_SECS)
    if message["type"] == "websocket.disconnect":
        raise ControlError("the websocket closed before MEDIA_START")
    text = message.get("text")
    if text is None:
        raise ControlError("the first message was media, not MEDIA_START")
    return MediaStart.from_control(parse_control(text))


async def media_websocket(websocket: WebSocket, runner: CallRunner) -> None:
    """``WS /telephony/asterisk/media?secret=..&from=..&to=..``: one chan_websocket channel."""
    peer = _peer(websocket)
    if not peer_allowed(peer):
        logger.warning(f"asterisk media websocket from {peer or '?'} refused: not in ASTERISK_ALLOWED_PEERS")
        await _close(websocket, WS_POLICY_VIOLATION)
        return
    params = websocket.query_params
    number = await number_for_secret(params.get("secret", ""))
    if number is None:
        logger.warning(f"asterisk media websocket from {peer} refused: no active Asterisk number has that secret")
        await _close(websocket, WS_POLICY_VIOLATION)
        return
    offered = websocket.scope.get("subprotocols") or []
    await websocket.accept(subprotocol=SUBPROTOCOL if SUBPROTOCOL in offered else None)
    try:
        start = await _read_media_start(websocket)
    except (TimeoutError, ControlError, WebSocketDisconnect, KeyError) as exc:
        why = "no MEDIA_START in time" if isinstance(exc, TimeoutError) else str(exc)
        logger.warning(f"asterisk media websocket from {peer} for {number} refused: {why}")
        await _close(websocket, WS_POLICY_VIOLATION)
        return
    serializer = AsteriskFrameSerializer(start)
    call_id = start.channel_id or start.connection_id or uuid.uuid4().hex
    accepted = await runner.accept(CallStart(provider=PROVIDER, call_id=call_id, from_=params.get("from", ""),
                                             to=params.get("to", "") or number, number=number))
    if isinstance(accepted, Refusal):
        logger.warning(f"asterisk call {call_id} ({start.channel}) to {number} refused ({accepted.reason}); hanging up")
        with contextlib.suppress(RuntimeError, WebSocketDisconnect, OSError):
            await websocket.send_text(serializer.command("HANGUP"))
        await _close(websocket, WS_POLICY_VIOLATION)
        return
    logger.info(f"asterisk call {call_id} ({start.channel}, {start.format}) to {number}: {accepted.bot}")
    # Dialled with "n" the channel waits for us; already answered, Asterisk drops a duplicate ANSWER.
    await websocket.send_text(serializer.command("ANSWER"))
    transport = FastAPIWebsocketTransport(websocket, FastAPIWebsocketParams(
        audio_in_enabled=True, audio_out_enabled=True, add_wav_header=False, serializer=serializer,
        allowed_origins=[]))

    @transport.event_handler("on_client_disconnected")
    async def _gone(_transport, _websocket):  # Asterisk hung up: it closes the websocket
        serializer.peer_gone = True
        await accepted.caller_left()

    async def hang_up() -> None:
        """The bot ended the call: HANGUP (if the serializer has not sent it at the pipeline's end), then close."""
        if not serializer.hangup_sent and not serializer.peer_gone \
                and websocket.application_state == WebSocketState.CONNECTED:
            serializer.hangup_sent = True
            with contextlib.suppress(RuntimeError, WebSocketDisconnect, OSError):
                await websocket.send_text(serializer.command("HANGUP"))
        await _close(websocket, 1000)

    await accepted.run(transport, CallControl(hang_up=hang_up))


# --- AudioSocket --------------------------------------------------------------------------

async def audiosocket_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                                 runner: CallRunner) -> None:
    """One AudioSocket TCP connection: peer, UUID, the runner's call, then the call on this socket."""
    peername = writer.get_extra_info("peername")
    peer = peername[0] if peername else ""
    if not peer_allowed(peer):
        logger.warning(f"asterisk audiosocket connection from {peer or '?'} refused: not in ASTERISK_ALLOWED_PEERS")
        writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await writer.wait_closed()
        return
    call_id = f"audiosocket-{uuid.uuid4().hex}"
    conn = AudioSocketConnection(reader, writer, label=f"asterisk audiosocket {call_id}")
    try:
        try:
            stream_uuid = read_uuid(await asyncio.wait_for(read_message(reader), START_TIMEOUT_SECS))
        except (TimeoutError, AudioSocketError, ConnectionError, OSError) as exc:
            why = "no UUID in time" if isinstance(exc, TimeoutError) else str(exc)
            logger.warning(f"asterisk audiosocket connection from {peer} refused: {why}")
            await conn.hang_up()
            return
        number = await number_for_uuid(stream_uuid)
        if number is None:
            logger.warning(f"asterisk audiosocket connection from {peer} refused: UUID {stream_uuid} is no active "
                           "Asterisk number's")
            await conn.hang_up()
            return
        accepted = await runner.accept(CallStart(provider=PROVIDER, call_id=call_id, to=number, number=number))
        if isinstance(accepted, Refusal):
            logger.warning(f"asterisk call {call_id} to {number} refused ({accepted.reason}); hanging up")
            await conn.hang_up()
            return
        logger.info(f"asterisk call {call_id} (audiosocket) to {number}: {accepted.bot}")
        left: list[asyncio.Task] = []

        async def caller_left() -> None:
            # Not awaited in the input transport's own receive task: ending the pipeline cancels that task.
            if not left:
                left.append(asyncio.create_task(accepted.caller_left()))

        transport = AudioSocketTransport(conn, on_caller_left=caller_left)
        await accepted.run(transport, CallControl(hang_up=conn.hang_up))
        if left:
            await asyncio.gather(*left, return_exceptions=True)
    finally:
        await conn.close()


async def start_audiosocket_server(runner: CallRunner, *, host: str, port: int) -> asyncio.AbstractServer:
    """An asyncio TCP server for ``AudioSocket(uuid,host:port)``; close it with ``server.close()``."""
    async def handle(reader, writer):
        try:
            await audiosocket_connection(reader, writer, runner)
        except Exception:  # noqa: BLE001 - one bad connection never takes the server down
            logger.exception("asterisk audiosocket connection failed")

    server = await asyncio.start_server(handle, host, port)
    logger.info(f"asterisk audiosocket server on {host}:{port}")
    return server
