"""Entry points that take calls through ``CallRunner.accept`` themselves: PBX-side telephony.

- ``routes(runner)``: their HTTP/websocket routes on the runner's app (Asterisk chan_websocket,
  the SIP endpoint's dial route for calls the platform places);
- ``Listener``s on their own sockets, started with the runner's lifespan and reported in
  ``/healthz`` under their names: the SIP endpoint, the AudioSocket server.

``from_settings`` picks the listeners the settings switch on (``runbots``); tests and
benchmarks pass their own to ``create_app``.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from django.conf import settings

from telephony.base import CallRunner


class Listener(Protocol):
    name: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def status(self) -> dict: ...


def routes(runner: CallRunner) -> list:
    from telephony import asterisk
    from telephony.sip import outbound as sip_outbound

    return [*asterisk.websocket_routes(runner), *sip_outbound.ROUTES]


class AudioSocketListener:
    """Asterisk's ``AudioSocket()`` connects here (TCP)."""

    name = "audiosocket"

    def __init__(self, runner: CallRunner, *, host: str, port: int):
        self.runner, self.host, self.port = runner, host, port
        self.server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        from telephony.asterisk import start_audiosocket_server

        self.server = await start_audiosocket_server(self.runner, host=self.host, port=self.port)

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
            self.server = None

    def status(self) -> dict:
        return {"ok": self.server is not None, "listening": f"{self.host}:{self.port}"}


def from_settings(runner: CallRunner) -> list[Listener]:
    listeners: list[Listener] = []
    if settings.SIP_ENABLED:
        from telephony.sip.agent import SipAgent

        listeners.append(SipAgent(runner))
    if settings.ASTERISK_AUDIOSOCKET_ENABLED:
        listeners.append(AudioSocketListener(runner, host=settings.ASTERISK_AUDIOSOCKET_HOST,
                                             port=settings.ASTERISK_AUDIOSOCKET_PORT))
    return listeners
