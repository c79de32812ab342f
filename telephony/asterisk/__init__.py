"""Asterisk media streams: chan_websocket (Asterisk 20.16 / 22.6 and later) and AudioSocket (TCP).

The runner mounts ``websocket_routes(runner)`` in its Starlette app and, when
``ASTERISK_AUDIOSOCKET_ENABLED``, starts ``start_audiosocket_server(runner, host=..., port=...)``
in its lifespan. ``runner`` is anything with ``telephony.base.CallRunner``'s ``accept``.
"""

from __future__ import annotations

from starlette.routing import WebSocketRoute

from telephony.asterisk.endpoints import media_websocket, start_audiosocket_server
from voicebot.asterisk_setup import WEBSOCKET_PATH, audiosocket_uuid

__all__ = ["WEBSOCKET_PATH", "audiosocket_uuid", "start_audiosocket_server", "websocket_routes"]


def websocket_routes(runner) -> list[WebSocketRoute]:
    """``WS /telephony/asterisk/media``; mount it before the runner's ``/telephony/{provider}/media``."""
    async def asterisk_media(websocket):
        await media_websocket(websocket, runner)

    return [WebSocketRoute(WEBSOCKET_PATH, asterisk_media)]
