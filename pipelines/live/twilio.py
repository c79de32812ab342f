"""Twilio: voice webhook (TwiML), Media Streams websocket, and REST hang-up/transfer.

The REST calls go to ``settings.TWILIO_API_BASE_URL`` (tests: a local fake).
"""

from __future__ import annotations

from xml.sax.saxutils import escape, quoteattr

import httpx
from django.conf import settings
from loguru import logger

from pipelines.live.factory import CallControl

UNKNOWN_NUMBER_APOLOGY = "Sorry, this number is not in service. Goodbye."


def stream_twiml(stream_url: str, params: dict[str, str]) -> str:
    parameters = "".join(f"<Parameter name={quoteattr(k)} value={quoteattr(v)}/>" for k, v in params.items())
    return (f'<?xml version="1.0" encoding="UTF-8"?><Response><Connect><Stream url={quoteattr(stream_url)}>'
            f"{parameters}</Stream></Connect></Response>")


def apology_twiml(text: str = UNKNOWN_NUMBER_APOLOGY) -> str:
    return f'<?xml version="1.0" encoding="UTF-8"?><Response><Say>{escape(text)}</Say><Hangup/></Response>'


def _call_url(call_sid: str) -> str:
    base = settings.TWILIO_API_BASE_URL.rstrip("/")
    return f"{base}/2010-04-01/Accounts/{settings.TWILIO_ACCOUNT_SID}/Calls/{call_sid}.json"


async def _update_call(call_sid: str, data: dict) -> None:
    auth = (settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN)
    async with httpx.AsyncClient(timeout=5) as client:
        response = await client.post(_call_url(call_sid), data=data, auth=auth)
    if response.status_code == 404:  # the caller already hung up
        logger.info(f"twilio call {call_sid} already gone")
        return
    response.raise_for_status()


def twilio_control(call_sid: str) -> CallControl:
    async def hang_up():
        await _update_call(call_sid, {"Status": "completed"})

    async def transfer(number: str):
        await _update_call(call_sid, {"Twiml": f"<Response><Dial>{escape(number)}</Dial></Response>"})

    return CallControl(hang_up=hang_up, transfer=transfer)
