"""Calls placed through the SIP endpoint: the dial task asks the runner, which holds PJSIP.

The dial task (a Celery worker) cannot send the INVITE itself: the endpoint, its RTP and the
call's pipeline live in the runner. So ``SipDialer.dial`` POSTs the placed call's signed
reference to the runner's ``/telephony/sip/dial`` (``dial_route``), which INVITEs the callee
(``SipAgent.dial``) and answers with the SIP Call-ID; the call's progress is stored from the
runner (``record_status``). A number becomes a URI through ``VOICEBOT_SIP_OUTBOUND_URI``.
"""

from __future__ import annotations

import asyncio

import pjsua2 as pj
from django.conf import settings
from django.db import close_old_connections
from loguru import logger
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from telephony.outbound import BadCallRef, read_call_ref
from telephony.providers import rest
from voicebot.models import Call
from voicebot.outbound_calls import record_status

DIAL_PATH = "/telephony/sip/dial"


class NoSipRoute(ValueError):
    """A number with no way to reach it over SIP (no VOICEBOT_SIP_OUTBOUND_URI)."""


def callee_uri(to: str) -> str:
    if to.lower().startswith(("sip:", "sips:")):
        return to
    template = settings.SIP_OUTBOUND_URI
    if not template:
        raise NoSipRoute(f"{to} is a number and VOICEBOT_SIP_OUTBOUND_URI is not set (e.g. sip:{{number}}@your-trunk)")
    return template.format(number=to)


class SipDialer:
    """What the dial task calls for a SIP number (the providers' adapters have the same ``dial``)."""

    name = "sip"
    outbound_path = status_path = DIAL_PATH

    def dial(self, *, to: str, from_: str, answer_url: str, status_url: str, ring_timeout_sec: int) -> str:
        answer = rest.dial("the runner's SIP endpoint", "POST", answer_url)
        return str(answer.get("call_id") or "")


def _placed(call_id: int) -> Call | None:
    try:
        return Call.objects.filter(pk=call_id, transport="sip", direction=Call.Direction.OUTBOUND,
                                   status=Call.Status.QUEUED).first()
    finally:
        close_old_connections()


def _record(**kwargs) -> None:
    try:
        record_status(**kwargs)
    finally:
        close_old_connections()


async def dial_route(request: Request) -> Response:
    """``POST /telephony/sip/dial?call=<signed ref>``: INVITE the placed call's callee; 202 with its Call-ID."""
    from telephony.sip.agent import SipAgent

    try:
        placed = read_call_ref(request.query_params.get("call", ""))
    except BadCallRef as exc:
        return Response(str(exc), status_code=403)
    agent = SipAgent.running
    if agent is None or not agent.listening:
        return JSONResponse({"error": "no SIP endpoint runs on this runner (VOICEBOT_SIP_ENABLED)"}, status_code=503)
    if placed in agent.dialled:
        return JSONResponse({"error": f"call {placed} was dialled already"}, status_code=409)
    call = await asyncio.to_thread(_placed, placed)
    if call is None:
        return JSONResponse({"error": f"no queued outbound SIP call {placed}"}, status_code=409)
    try:
        uri = callee_uri(call.to_number)
    except NoSipRoute as exc:
        return JSONResponse({"error": str(exc)}, status_code=400)
    agent.dialled.add(placed)

    async def on_status(status: str, note: str) -> None:
        await asyncio.to_thread(_record, call_id=placed, status=status, note=note)

    try:
        sip_call_id = await agent.dial(uri=uri, from_number=call.from_number, outbound_call=placed,
                                       ring_timeout_sec=settings.OUTBOUND_RING_TIMEOUT_SEC, on_status=on_status)
    except pj.Error as exc:
        logger.warning(f"sip call {placed} to {uri}: INVITE not sent: {exc.info()}")
        return JSONResponse({"error": f"the INVITE to {uri} could not be sent: {exc.reason}"}, status_code=400)
    logger.info(f"sip call {placed}: INVITE to {uri} ({sip_call_id})")
    return JSONResponse({"call_id": sip_call_id, "uri": uri}, status_code=202)


ROUTES = [Route(DIAL_PATH, dial_route, methods=["POST"])]
