"""Telnyx: the TeXML voice webhook, its media stream, and Call Control v2 hang-up/transfer/DTMF.

TeXML is TwiML-compatible, but its streams take no parameters, so the stream token rides
on the stream URL. Call control (bearer ``TELNYX_API_KEY``, base ``TELNYX_API_BASE_URL``):
``POST /v2/calls/{call_control_id}/actions/hangup``, ``.../actions/transfer`` with
``{"to": number}`` and ``.../actions/send_dtmf`` with ``{"digits": digits}``.
"""

from __future__ import annotations

from urllib.parse import quote
from xml.sax.saxutils import quoteattr

from django.conf import settings
from loguru import logger

from telephony.base import CallControl
from telephony.providers import rest
from telephony.providers.adapter import StreamAdapter, with_token
from telephony.providers.twilio import apology_twiml


def stream_texml(stream_url: str) -> str:
    """TeXML that connects a bidirectional media stream (PCMU, Telnyx's default)."""
    return ('<?xml version="1.0" encoding="UTF-8"?><Response><Connect>'
            f'<Stream url={quoteattr(stream_url)} bidirectionalMode="rtp"/></Connect></Response>')


def _action_url(call_control_id: str, action: str) -> str:
    base = settings.TELNYX_API_BASE_URL.rstrip("/")
    return f"{base}/v2/calls/{quote(call_control_id, safe=':')}/actions/{action}"


async def _action(call_control_id: str, action: str, body: dict) -> None:
    rest.require("TELNYX_API_KEY")
    await rest.send("telnyx", call_control_id, "POST", _action_url(call_control_id, action), json=body,
                    headers={"Authorization": f"Bearer {settings.TELNYX_API_KEY}"})


def telnyx_control(call_control_id: str) -> CallControl:
    async def hang_up():
        await _action(call_control_id, "hangup", {})

    async def transfer(number: str):
        await _action(call_control_id, "transfer", {"to": number})

    async def send_dtmf(digits: str):
        await _action(call_control_id, "send_dtmf", {"digits": digits})

    return CallControl(hang_up=hang_up, transfer=transfer, send_dtmf=send_dtmf)


class Telnyx(StreamAdapter):
    name = "telnyx"
    webhook_path = "/telephony/telnyx/voice"
    stream_path = "/telephony/telnyx/media"
    outbound_path = "/telephony/telnyx/outbound"
    status_path = "/telephony/telnyx/status"
    call_id_fields = ("CallControlId", "CallSid")
    provider_statuses = {"queued": "queued", "initiated": "queued", "ringing": "ringing", "in-progress": "in-progress",
                         "answered": "in-progress", "completed": "completed", "busy": "busy", "no-answer": "no-answer",
                         "failed": "failed", "canceled": "canceled"}

    def dial(self, *, to: str, from_: str, answer_url: str, status_url: str, ring_timeout_sec: int) -> str:
        """TeXML's outbound call (``POST /v2/texml/calls/{application_id}``): TwiML-like, so the answer URL
        returns the same stream TeXML as an inbound call's webhook."""
        rest.require("TELNYX_API_KEY", "TELNYX_TEXML_APP_ID")
        url = (f"{settings.TELNYX_API_BASE_URL.rstrip('/')}/v2/texml/calls/"
               f"{quote(settings.TELNYX_TEXML_APP_ID, safe='')}")
        answer = rest.dial("telnyx", "POST", url, headers={"Authorization": f"Bearer {settings.TELNYX_API_KEY}"},
                           json={"To": to, "From": from_, "Url": answer_url, "Method": "POST",
                                 "StatusCallback": status_url, "StatusCallbackMethod": "POST",
                                 "StatusCallbackEvent": "initiated ringing answered completed",
                                 "Timeout": ring_timeout_sec})
        data = answer.get("data", answer)
        return str(data.get("call_sid") or data.get("call_control_id") or "") if isinstance(data, dict) else ""

    def answer(self, stream_url: str, token: str) -> str:
        return stream_texml(with_token(stream_url, token))

    def apology(self, text: str) -> str:
        return apology_twiml(text)  # TeXML speaks TwiML's <Say>

    def serializer(self, start: dict):
        from pipecat.serializers.telnyx import TelnyxFrameSerializer

        encoding = start.get("outbound_encoding") or "PCMU"
        return TelnyxFrameSerializer(stream_id=start.get("stream_id"), outbound_encoding=encoding,
                                     inbound_encoding=encoding, call_control_id=start.get("call_id"),
                                     params=TelnyxFrameSerializer.InputParams(auto_hang_up=False))

    def control(self, start: dict, connection) -> CallControl:
        call_id = start.get("call_id") or ""
        if not call_id:
            logger.warning("telnyx stream without a call id: the bot cannot hang up or transfer it")
            return CallControl()
        return telnyx_control(call_id)


ADAPTER = Telnyx()
