"""A provider webhook's parameters, read only after its signature checks out (README, "Security")."""

from __future__ import annotations

import json
from urllib.parse import parse_qsl

from django.conf import settings
from loguru import logger
from starlette.requests import Request
from starlette.responses import Response

from telephony import public_url, signatures

MAX_WEBHOOK_BYTES = 64 * 1024


class Refused(Exception):
    """A request that gets an HTTP error answer (``response``) instead of a call."""

    def __init__(self, response: Response):
        self.response = response


def peer(connection) -> str:
    return connection.client.host if connection.client else "?"


async def verified_params(request: Request, adapter) -> dict:
    """The webhook's parameters (form or JSON object), once ``adapter.verify`` accepts the request.

    Raises ``Refused``: 413 too large, 400 unreadable, 403 unsigned or badly signed. With
    ``TELEPHONY_VERIFY_SIGNATURES`` off (local development only) nothing is verified.
    """
    provider = adapter.name
    body = await request.body()
    if len(body) > MAX_WEBHOOK_BYTES:
        raise Refused(Response("webhook body too large", status_code=413))
    is_json = "json" in request.headers.get("content-type", "")
    try:
        text = body.decode("utf-8")
        params = json.loads(text or "{}") if is_json else dict(parse_qsl(text, keep_blank_values=True))
    except (UnicodeDecodeError, ValueError):
        raise Refused(Response(f"unreadable {provider} webhook body", status_code=400)) from None
    if not isinstance(params, dict):
        raise Refused(Response(f"{provider} webhook body must be a JSON object or a form", status_code=400))
    if settings.TELEPHONY_VERIFY_SIGNATURES:
        signed = signatures.SignedRequest(method=request.method, url=public_url.request_url(request),
                                          headers=request.headers, body=body, form=None if is_json else params)
        try:
            adapter.verify(signed)
        except signatures.SignatureError as exc:
            logger.warning(f"{provider} webhook from {peer(request)} refused: {exc}")
            raise Refused(Response(f"{provider} signature check failed", status_code=403)) from None
    return params
