"""Entry points that listen on their own sockets (not HTTP routes): the SIP endpoint, AudioSocket.

Each is a ``Listener`` the runner starts with its lifespan and reports in ``/healthz``
under its name. ``from_settings`` picks the ones the settings switch on (``runbots``);
tests and benchmarks pass their own list to ``create_app``.
"""

from __future__ import annotations

from typing import Protocol

from django.conf import settings

from telephony.base import CallRunner


class Listener(Protocol):
    name: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def status(self) -> dict: ...


def from_settings(runner: CallRunner) -> list[Listener]:
    listeners: list[Listener] = []
    if settings.SIP_ENABLED:
        from telephony.sip.agent import SipAgent

        listeners.append(SipAgent(runner))
    return listeners
