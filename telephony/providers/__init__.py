"""One adapter per provider (``adapter.py`` says what each gives), by the provider's name.

The runner serves every adapter of a kind with one handler; adding a provider is adding
its module here.
"""

from __future__ import annotations

from telephony.providers import browser, daily, exotel, plivo, telnyx, twilio
from telephony.providers.adapter import BROWSER, ROOM, STREAM, Adapter

ADAPTERS: dict[str, Adapter] = {module.ADAPTER.name: module.ADAPTER
                                for module in (twilio, telnyx, plivo, exotel, daily, browser)}


def of_kind(kind: str) -> list[Adapter]:
    return [adapter for adapter in ADAPTERS.values() if adapter.kind == kind]


__all__ = ["ADAPTERS", "BROWSER", "ROOM", "STREAM", "of_kind"]
