"""Signed HTTP requests to clients' systems: webhooks (postcall) and bot tools (pipelines).

Every request carries::

    X-Voicebot-Event: <event>
    X-Voicebot-Delivery: <unique id, for the receiver's idempotency>
    X-Voicebot-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>

A receiver recomputes the HMAC over the raw body it got, compares in constant
time and rejects timestamps older than a few minutes (replays).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time

SIGNATURE_HEADER = "X-Voicebot-Signature"
EVENT_HEADER = "X-Voicebot-Event"
DELIVERY_HEADER = "X-Voicebot-Delivery"


def body_bytes(payload) -> bytes:
    """The canonical JSON body that is signed and sent."""
    return json.dumps(payload, separators=(",", ":"), sort_keys=True, default=str).encode()


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The signature header value for ``body`` (now, unless ``timestamp`` is given)."""
    t = int(time.time()) if timestamp is None else int(timestamp)
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def verify(secret: str, body: bytes, header: str, *, tolerance_sec: int = 300, now: float | None = None) -> bool:
    """What a receiver does: recompute, compare in constant time, check the age."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        t = int(parts["t"])
    except (ValueError, KeyError):
        return False
    if abs((time.time() if now is None else now) - t) > tolerance_sec:
        return False
    expected = sign(secret, body, t).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))


def headers(secret: str, body: bytes, event: str, delivery_id: str) -> dict[str, str]:
    """All headers of a signed JSON request (no signature when there is no secret)."""
    result = {"Content-Type": "application/json", EVENT_HEADER: event, DELIVERY_HEADER: delivery_id}
    if secret:
        result[SIGNATURE_HEADER] = sign(secret, body)
    return result
