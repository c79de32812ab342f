"""Plivo: the answer webhook (Plivo XML), its media stream, and REST hang-up/transfer/DTMF.

REST (basic auth ``PLIVO_AUTH_ID``/``PLIVO_AUTH_TOKEN``, base ``PLIVO_API_BASE_URL``):
hang-up is ``DELETE /v1/Account/{auth_id}/Call/{call_uuid}/``; transfer is ``POST`` to the
same URL with ``legs=aleg`` and an ``aleg_url`` on the runner
(``/telephony/plivo/transfer?token=...``, this adapter's extra route; the number is signed
so the route dials nothing else) whose XML is ``<Dial><Number>``; DTMF is
``POST .../Call/{call_uuid}/DTMF/`` with ``digits``.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import quote
from xml.sax.saxutils import escape

from django.conf import settings
from django.core import signing
from loguru import logger
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from telephony import public_url
from telephony.base import CallControl
from telephony.providers import rest
from telephony.providers.adapter import StreamAdapter, with_token

TRANSFER_PATH = "/telephony/plivo/transfer"
TRANSFER_SALT = "voicebot.plivo-transfer"
TRANSFER_MAX_AGE_SEC = 600  # Plivo may retry the aleg_url fetch for a while
XML = "application/xml"


def answer_xml(stream_url: str) -> str:
    return ('<?xml version="1.0" encoding="UTF-8"?><Response><Stream bidirectional="true" keepCallAlive="true" '
            f'contentType="audio/x-mulaw;rate=8000">{escape(stream_url)}</Stream></Response>')


def apology_xml(text: str) -> str:
    """Plivo's answer that says ``text`` and hangs up."""
    return f'<?xml version="1.0" encoding="UTF-8"?><Response><Speak>{escape(text)}</Speak><Hangup/></Response>'


def dial_xml(number: str) -> str:
    return f'<?xml version="1.0" encoding="UTF-8"?><Response><Dial><Number>{escape(number)}</Number></Dial></Response>'


def sign_transfer(number: str) -> str:
    return signing.dumps({"to": number}, salt=TRANSFER_SALT)


def transfer_target(token: str) -> str:
    """The number a signed transfer token names; ``signing.BadSignature`` if forged or expired."""
    return signing.loads(token or "", salt=TRANSFER_SALT, max_age=TRANSFER_MAX_AGE_SEC)["to"]


def _call_url(call_uuid: str, tail: str = "") -> str:
    base = settings.PLIVO_API_BASE_URL.rstrip("/")
    return f"{base}/v1/Account/{quote(settings.PLIVO_AUTH_ID, safe='')}/Call/{quote(call_uuid, safe='')}/{tail}"


async def _request(call_uuid: str, method: str, tail: str = "", **kwargs) -> None:
    rest.require("PLIVO_AUTH_ID", "PLIVO_AUTH_TOKEN")
    await rest.send("plivo", call_uuid, method, _call_url(call_uuid, tail),
                    auth=(settings.PLIVO_AUTH_ID, settings.PLIVO_AUTH_TOKEN), **kwargs)


def plivo_control(call_uuid: str, *, transfer_url: Callable[[str], str]) -> CallControl:
    """``transfer_url(token)``: the public URL of the runner's transfer route for a token."""

    async def hang_up():
        await _request(call_uuid, "DELETE")

    async def transfer(number: str):
        await _request(call_uuid, "POST", json={
            "legs": "aleg", "aleg_url": transfer_url(sign_transfer(number)), "aleg_method": "POST"})

    async def send_dtmf(digits: str):
        await _request(call_uuid, "POST", "DTMF/", json={"digits": digits, "leg": "aleg"})

    return CallControl(hang_up=hang_up, transfer=transfer, send_dtmf=send_dtmf)


async def transfer_route(request: Request) -> Response:
    """The XML Plivo fetches for a transfer (``aleg_url``): dial the number the signed token names."""
    try:
        number = transfer_target(request.query_params.get("token", ""))
    except signing.BadSignature:
        logger.warning("plivo transfer URL with a missing, forged or expired token")
        return Response("invalid transfer token", status_code=403)
    return Response(dial_xml(number), media_type=XML)


class Plivo(StreamAdapter):
    name = "plivo"
    webhook_path = "/telephony/plivo/answer"
    stream_path = "/telephony/plivo/media"
    outbound_path = "/telephony/plivo/outbound"
    status_path = "/telephony/plivo/status"
    call_id_fields = ("CallUUID",)
    routes = (Route(TRANSFER_PATH, transfer_route, methods=["GET", "POST"]),)
    # ring_url: "ringing"; answer_url: in-progress; hangup_url: the final CallStatus.
    provider_statuses = {"ringing": "ringing", "in-progress": "in-progress", "completed": "completed",
                         "busy": "busy", "no-answer": "no-answer", "timeout": "no-answer", "failed": "failed",
                         "cancel": "canceled", "canceled": "canceled"}

    def dial(self, *, to: str, from_: str, answer_url: str, status_url: str, ring_timeout_sec: int) -> str:
        """Plivo's ``Call`` API. Its answer names a request, not the call: the call's CallUUID comes with the
        first callback, so nothing is returned here."""
        rest.require("PLIVO_AUTH_ID", "PLIVO_AUTH_TOKEN")
        url = f"{settings.PLIVO_API_BASE_URL.rstrip('/')}/v1/Account/{quote(settings.PLIVO_AUTH_ID, safe='')}/Call/"
        answer = rest.dial("plivo", "POST", url, auth=(settings.PLIVO_AUTH_ID, settings.PLIVO_AUTH_TOKEN), json={
            "from": from_.lstrip("+"), "to": to.lstrip("+"), "answer_url": answer_url, "answer_method": "POST",
            "ring_url": status_url, "ring_method": "POST", "hangup_url": status_url, "hangup_method": "POST",
            "ring_timeout": ring_timeout_sec})
        if not answer.get("request_uuid"):
            raise rest.DialRefused(f"plivo did not fire the call: {str(answer)[:200]}")
        return ""

    def status_update(self, params: dict) -> tuple[str, str]:
        status, call_id = super().status_update(params)
        if params.get("Event") == "Ring" or (not status and params.get("CallStatus") == "ringing"):
            status = "ringing"
        return status, call_id

    def answer(self, stream_url: str, token: str) -> str:
        return answer_xml(with_token(stream_url, token))

    def apology(self, text: str) -> str:
        return apology_xml(text)

    def serializer(self, start: dict):
        from pipecat.serializers.plivo import PlivoFrameSerializer

        return PlivoFrameSerializer(stream_id=start.get("stream_id"), call_id=start.get("call_id"),
                                    params=PlivoFrameSerializer.InputParams(auto_hang_up=False))

    def control(self, start: dict, connection) -> CallControl:
        call_id = start.get("call_id") or ""
        if not call_id:
            logger.warning("plivo stream without a call id: the bot cannot hang up or transfer it")
            return CallControl()
        return plivo_control(call_id, transfer_url=lambda token: with_token(
            public_url.http_url(connection, TRANSFER_PATH), token))


ADAPTER = Plivo()
