"""Hang-up and transfer for Telnyx, Plivo and Exotel media-stream calls (``CallControl``).

The counterpart of ``twilio.twilio_control``: ``LiveCall.run`` awaits
``hang_up()`` when the bot ended the call (goodbye, silence, max_turns,
``end_call``, an unknown number's apology) and the conversation rules await
``transfer(number)`` for ``transfer_call``. Each REST call goes to the
provider's ``*_API_BASE_URL`` setting (tests: a local fake). A 404 (the caller
already hung up; Telnyx also answers 422 with error 90018 "call has already
ended") is logged and ignored; any other error raises, and the caller of the
control logs it.

- Telnyx (Call Control v2, bearer ``TELNYX_API_KEY``):
  ``POST /v2/calls/{call_control_id}/actions/hangup`` and
  ``.../actions/transfer`` with ``{"to": number}``.
- Plivo (basic auth ``PLIVO_AUTH_ID``/``PLIVO_AUTH_TOKEN``): hang-up is
  ``DELETE /v1/Account/{auth_id}/Call/{call_uuid}/``; transfer is
  ``POST`` to the same URL with ``legs=aleg`` and an ``aleg_url`` on our
  runner (``/telephony/plivo/transfer?token=...``, the number signed so the
  route dials nothing else) whose XML is ``<Dial><Number>``.
- Exotel: a Voicebot applet stream has no REST call control. The bot hangs up
  by closing the websocket, which ends the applet and lets the App Bazaar flow
  go on to its next applet (a Hangup applet in the usual flow). Transfers are
  not supported by Exotel streams (``transfer`` is None); the runner then runs
  the call as if the bot had no transfer number, so the caller hears the
  engine's "can't put you through" reply instead of a transfer that never comes.
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Callable
from urllib.parse import quote
from xml.sax.saxutils import escape

import httpx
from django.conf import settings
from django.core import signing
from loguru import logger

from pipelines.live.factory import CallControl

TRANSFER_SALT = "voicebot.plivo-transfer"
TRANSFER_MAX_AGE_SEC = 600  # Plivo may retry the aleg_url fetch for a while
TIMEOUT_SECS = 5


class ProviderNotConfigured(RuntimeError):
    """A provider setting the REST call needs is empty; the message names it."""


def _require(*names: str) -> None:
    missing = [name for name in names if not getattr(settings, name, "")]
    if missing:
        raise ProviderNotConfigured(f"{', '.join(missing)} not set: cannot control the call")


def _gone(response: httpx.Response) -> bool:
    """The call no longer exists on the provider's side (the caller hung up first)."""
    if response.status_code == 404:
        return True
    if response.status_code == 422:  # Telnyx: {"errors": [{"code": "90018", "title": "Call has already ended"}]}
        with contextlib.suppress(ValueError, AttributeError):
            return any(str(e.get("code")) == "90018" for e in response.json().get("errors", []))
    return False


async def _send(provider: str, call_id: str, method: str, url: str, **kwargs) -> None:
    async with httpx.AsyncClient(timeout=TIMEOUT_SECS) as client:
        response = await client.request(method, url, **kwargs)
    if _gone(response):
        logger.info(f"{provider} call {call_id} already gone ({response.status_code})")
        return
    response.raise_for_status()


# --- Telnyx ---------------------------------------------------------------------------

def _telnyx_action_url(call_control_id: str, action: str) -> str:
    base = settings.TELNYX_API_BASE_URL.rstrip("/")
    return f"{base}/v2/calls/{quote(call_control_id, safe=':')}/actions/{action}"


async def _telnyx_action(call_control_id: str, action: str, body: dict) -> None:
    _require("TELNYX_API_KEY")
    await _send("telnyx", call_control_id, "POST", _telnyx_action_url(call_control_id, action), json=body,
                headers={"Authorization": f"Bearer {settings.TELNYX_API_KEY}"})


def telnyx_control(call_control_id: str) -> CallControl:
    async def hang_up():
        await _telnyx_action(call_control_id, "hangup", {})

    async def transfer(number: str):
        await _telnyx_action(call_control_id, "transfer", {"to": number})

    return CallControl(hang_up=hang_up, transfer=transfer)


# --- Plivo ----------------------------------------------------------------------------

def _plivo_call_url(call_uuid: str) -> str:
    base = settings.PLIVO_API_BASE_URL.rstrip("/")
    return f"{base}/v1/Account/{quote(settings.PLIVO_AUTH_ID, safe='')}/Call/{quote(call_uuid, safe='')}/"


async def _plivo_request(call_uuid: str, method: str, **kwargs) -> None:
    _require("PLIVO_AUTH_ID", "PLIVO_AUTH_TOKEN")
    await _send("plivo", call_uuid, method, _plivo_call_url(call_uuid),
                auth=(settings.PLIVO_AUTH_ID, settings.PLIVO_AUTH_TOKEN), **kwargs)


def sign_transfer(number: str) -> str:
    return signing.dumps({"to": number}, salt=TRANSFER_SALT)


def transfer_target(token: str) -> str:
    """The number a signed transfer token names; ``signing.BadSignature`` if forged or expired."""
    return signing.loads(token or "", salt=TRANSFER_SALT, max_age=TRANSFER_MAX_AGE_SEC)["to"]


def plivo_dial_xml(number: str) -> str:
    return f'<?xml version="1.0" encoding="UTF-8"?><Response><Dial><Number>{escape(number)}</Number></Dial></Response>'


def plivo_control(call_uuid: str, *, transfer_url: Callable[[str], str]) -> CallControl:
    """``transfer_url(token)``: the public URL of the runner's ``/telephony/plivo/transfer`` for a token."""

    async def hang_up():
        await _plivo_request(call_uuid, "DELETE")

    async def transfer(number: str):
        await _plivo_request(call_uuid, "POST", json={
            "legs": "aleg", "aleg_url": transfer_url(sign_transfer(number)), "aleg_method": "POST"})

    return CallControl(hang_up=hang_up, transfer=transfer)


# --- Exotel ---------------------------------------------------------------------------

def exotel_control(websocket) -> CallControl:
    """No REST: hang up = close the stream's websocket (the flow's next applet ends the call); no transfer."""

    async def hang_up():
        from starlette.websockets import WebSocketState

        if websocket.application_state != WebSocketState.DISCONNECTED:
            with contextlib.suppress(RuntimeError):  # closed meanwhile by the transport
                await websocket.close()

    return CallControl(hang_up=hang_up, transfer=None)


def without_unsupported_transfer(config, control: CallControl, *, provider: str, call_id: str):
    """The call's BotConfig with no transfer number when ``control`` cannot transfer (Exotel).

    The bot then answers a transfer request as a bot without a transfer number does (the
    scenario engine says it can't put the caller through; otherwise the LLM answers) rather
    than promising a transfer and hanging up.
    """
    if control.transfer is not None or not config.transfer_number:
        return config
    reason = "not supported by Exotel streams" if provider == "exotel" else "impossible without a call id"
    logger.warning(f"{provider} call {call_id}: transfer {reason}; "
                   f"transfer number {config.transfer_number} is not offered on this call")
    return dataclasses.replace(config, transfer_number="")


def control_for(provider: str, call_id: str, websocket, *, transfer_url: Callable[[str], str]) -> CallControl:
    if provider in ("telnyx", "plivo") and not call_id:
        logger.warning(f"{provider} stream without a call id: the bot cannot hang up or transfer it")
        return CallControl()
    if provider == "telnyx":
        return telnyx_control(call_id)
    if provider == "plivo":
        return plivo_control(call_id, transfer_url=transfer_url)
    if provider == "exotel":
        return exotel_control(websocket)
    raise ValueError(f"no call control for provider {provider!r}")
