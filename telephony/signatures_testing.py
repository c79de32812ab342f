"""The signing side of the providers' webhook schemes, for tests and the simulated callers.

Written straight from each provider's documented algorithm with hmac/hashlib/base64/
cryptography only, independently of :mod:`telephony.signatures` (which delegates to
the providers' libraries), so a test that signs here and verifies there proves the
verifier follows the documented scheme rather than agreeing with itself.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from urllib.parse import parse_qsl, urlsplit

__all__ = ["sign_daily", "sign_plivo_v3", "sign_telnyx", "sign_twilio", "telnyx_public_key_b64", "twilio_body_sha256"]


def sign_twilio(url: str, form: Mapping[str, str] | None, auth_token: str) -> str:
    """``X-Twilio-Signature``: base64(HMAC-SHA1(auth token, URL + each POST param name+value,
    sorted by name)). For a JSON body pass ``form=None`` and a URL that carries
    ``bodySHA256=<hex sha256 of the body>`` (see :func:`twilio_body_sha256`)."""
    data = url
    for name in sorted(form or {}):
        data += name + form[name]
    digest = hmac.new(auth_token.encode("utf-8"), data.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def twilio_body_sha256(body: bytes) -> str:
    """The ``bodySHA256`` query value Twilio adds when it posts a JSON body."""
    return hashlib.sha256(body).hexdigest()


def _sorted_pairs(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return sorted(pairs)  # by name, then value for repeated names


def sign_plivo_v3(method: str, url: str, nonce: str, auth_token: str,
                  params: Mapping[str, str] | None = None) -> str:
    """``X-Plivo-Signature-V3``: base64(HMAC-SHA256(auth token, base + "." + nonce)).

    base = scheme://host[:port]/path, then
      GET:  "?" + "k=v&k=v" over the URL's query params and ``params``, sorted by name
            (nothing when there are none);
      POST: "?" + the URL's sorted query as for GET, then "." if there was a query, then
            the POST params sorted by name written "kv" back to back; without POST params
            just the URL's sorted query (if any) after "?".
    Query values are used decoded.
    """
    parts = urlsplit(url)
    base = f"{parts.scheme}://{parts.netloc}{parts.path}"
    query = parse_qsl(parts.query, keep_blank_values=True)
    params = dict(params or {})
    if method.upper() == "GET":
        names_in_query = {k for k, _ in query}
        pairs = query + [(k, v) for k, v in params.items() if k not in names_in_query]
        qs = "&".join(f"{k}={v}" for k, v in _sorted_pairs(pairs))
        data = base + ("?" + qs if qs else "")
    else:
        qs = "&".join(f"{k}={v}" for k, v in _sorted_pairs(query))
        if params:
            data = base + "?" + qs + ("." if qs else "") + "".join(f"{k}{params[k]}" for k in sorted(params))
        else:
            data = base + ("?" + qs if qs else "")
    digest = hmac.new(auth_token.encode("utf-8"), f"{data}.{nonce}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def sign_telnyx(private_key, timestamp: str | int, body: bytes) -> str:
    """``telnyx-signature-ed25519``: base64(Ed25519 signature of ``f"{timestamp}|{body}"``).

    ``private_key`` is a cryptography ``Ed25519PrivateKey`` or its 32 raw bytes.
    """
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    if isinstance(private_key, (bytes, bytearray)):
        private_key = Ed25519PrivateKey.from_private_bytes(bytes(private_key))
    signature = private_key.sign(str(timestamp).encode("utf-8") + b"|" + body)
    return base64.b64encode(signature).decode("ascii")


def telnyx_public_key_b64(private_key) -> str:
    """The base64 raw public key, as Telnyx's portal shows it (for ``TELNYX_PUBLIC_KEY``)."""
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    raw = private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return base64.b64encode(raw).decode("ascii")


def sign_daily(secret_b64: str, timestamp: str | int, body: bytes) -> str:
    """``X-Webhook-Signature``: base64(HMAC-SHA256(base64-decoded secret, ``f"{timestamp}.{body}"``))."""
    key = base64.b64decode(secret_b64)
    digest = hmac.new(key, str(timestamp).encode("utf-8") + b"." + body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")
