"""Verify provider webhook requests with each provider's own documented scheme.

Pure: no I/O, no database; reads only the settings named below. The runner calls
:func:`verify` before it parses anything a provider sent (and decides itself whether
``TELEPHONY_VERIFY_SIGNATURES`` allows skipping it: :func:`verify` always checks).

============  =====================================  ==========================================
provider      headers                                what is signed (and with what)
============  =====================================  ==========================================
``twilio``    ``X-Twilio-Signature``                 base64(HMAC-SHA1(``TWILIO_AUTH_TOKEN``,
                                                     full URL + sorted POST name+value pairs)),
                                                     checked by ``twilio.request_validator.
                                                     RequestValidator`` (URL with and without
                                                     the default port; JSON bodies through the
                                                     ``bodySHA256`` query parameter; the
                                                     ``X-Twilio-Webhooks-Signature-Settings``
                                                     algorithm when the library knows it).
``plivo``     ``X-Plivo-Signature-V3``,              V3: base64(HMAC-SHA256(``PLIVO_AUTH_TOKEN``,
              ``X-Plivo-Signature-V3-Nonce``         URL with sorted query [+ sorted POST
              (``X-Plivo-Signature-Ma-V3`` too)      params] + "." + nonce)), checked by
                                                     ``plivo.utils.signature_v3.
                                                     validate_v3_signature``; a header may hold
                                                     several comma-separated signatures, any one
                                                     matching is enough. http(s) URLs only.
``telnyx``    ``telnyx-signature-ed25519``,          Ed25519 over ``f"{timestamp}|{raw body}"``,
              ``telnyx-timestamp``                   public key ``TELNYX_PUBLIC_KEY`` (base64,
                                                     32 bytes); API v2 webhooks and TeXML.
``daily``     ``X-Webhook-Signature``,               base64(HMAC-SHA256(base64-decoded
              ``X-Webhook-Timestamp``                ``DAILY_WEBHOOK_SECRET``,
              (or ``X-Pinless-Signature``,           ``f"{timestamp}.{raw body}"``)).
              ``X-Pinless-Timestamp``)
============  =====================================  ==========================================

Telnyx and Daily timestamps older (or further in the future) than
``TELEPHONY_SIGNATURE_TOLERANCE_SEC`` are refused as replays. Twilio and Plivo sign the
URL (so a request replayed to another host or path fails) but carry no timestamp.

Daily notes. ``X-Webhook-Signature``/``X-Webhook-Timestamp`` are the headers of Daily's
REST webhooks. The pinless dial-in ``room_creation_api`` hook is configured with its own
``hmac`` secret; its header names are accepted in both spellings above (the
``X-Pinless-*`` spelling is not confirmed against Daily's docs here; both are checked with
the same algorithm and secret, so accepting either weakens nothing). That ``hmac`` value
may be a chosen string rather than base64: the secret's base64 decoding is tried first and
its UTF-8 bytes second, both derived from the configured secret. The timestamp is accepted
as unix seconds, unix milliseconds or ISO 8601 for the age check; the signed payload
always uses the header text exactly as sent.

Exotel signs nothing and is not handled here. Error messages name headers and settings,
never secrets, signatures or header values.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, parse_qsl, urlsplit

PROVIDERS = ("twilio", "plivo", "telnyx", "daily")


class SignatureError(Exception):
    """Why a request is refused (message safe to log: never echoes secrets)."""


class _Headers(Mapping):
    """Read-only, case-insensitive header mapping (keys stored lower-case)."""

    def __init__(self, headers: Mapping[str, str] | None):
        items: Any = headers.items() if headers is not None else ()
        self._data = {str(k).lower(): str(v) for k, v in items}

    def __getitem__(self, key: str) -> str:
        return self._data[key.lower()]

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self._data

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"_Headers({sorted(self._data)!r})"  # names only: values may be secret-ish


@dataclass(frozen=True)
class SignedRequest:
    method: str  # "POST" / "GET"
    url: str  # full public URL the provider called (scheme://host[:port]/path?query)
    headers: Mapping[str, str]  # looked up case-insensitively
    body: bytes  # raw body
    form: Mapping[str, str] | None = None  # parsed x-www-form-urlencoded params, if a form

    def __post_init__(self) -> None:
        if not isinstance(self.headers, _Headers):
            object.__setattr__(self, "headers", _Headers(self.headers))
        if self.body is None:
            object.__setattr__(self, "body", b"")

    def header(self, name: str) -> str:
        """The header's value stripped, '' when absent."""
        return (self.headers.get(name) or "").strip()


def verify(provider: str, request: SignedRequest, *, now: float | None = None) -> None:
    """Raise SignatureError unless `request` is signed by `provider` ("twilio", "plivo", "telnyx", "daily").

    Raises SignatureError naming the missing setting when the secret/key is not configured.
    """
    name = (provider or "").strip().lower()
    check = _VERIFIERS.get(name)
    if check is None:
        raise SignatureError(f"unknown provider {provider!r}: signatures are verified for {', '.join(PROVIDERS)}")
    if not isinstance(request, SignedRequest):
        raise SignatureError("verify() needs a SignedRequest")
    check(request, time.time() if now is None else float(now))


# --- settings ----------------------------------------------------------------------------

def _setting(name: str, provider: str) -> str:
    from django.conf import settings

    value = str(getattr(settings, name, "") or "").strip()
    if not value:
        raise SignatureError(f"{name} is not set: cannot verify {provider} requests (refused)")
    return value


def _tolerance() -> float:
    from django.conf import settings

    return float(getattr(settings, "TELEPHONY_SIGNATURE_TOLERANCE_SEC", 300))


# --- shared helpers --------------------------------------------------------------------

def _require_header(request: SignedRequest, name: str, provider: str) -> str:
    value = request.header(name)
    if not value:
        raise SignatureError(f"{provider} request has no {name} header")
    return value


def _method(request: SignedRequest) -> str:
    return (request.method or "").strip().upper()


def _form_lists(request: SignedRequest) -> dict[str, list[str]]:
    """POST params as name -> [values]: the parsed form, else the raw body parsed as a form.

    GET requests carry their params in the (signed) URL, so they have none here. A POST
    body that is not a form parses into junk params that fail the signature, so the body
    is always covered.
    """
    if _method(request) == "GET":
        return {}
    out: dict[str, list[str]] = {}
    form = request.form
    if form is not None:
        if hasattr(form, "multi_items"):  # starlette FormData
            pairs = list(form.multi_items())
        elif hasattr(form, "getlist"):  # Django QueryDict, werkzeug MultiDict
            pairs = [(k, v) for k in form for v in form.getlist(k)]
        else:
            pairs = list(form.items())
        for key, value in pairs:
            out.setdefault(str(key), []).append(value if isinstance(value, str) else str(value))
        return out
    if not request.body:
        return {}
    try:
        text = request.body.decode("utf-8")
    except UnicodeDecodeError:
        raise SignatureError("request body is not UTF-8 form data") from None
    for key, value in parse_qsl(text, keep_blank_values=True):
        out.setdefault(key, []).append(value)
    return out


def _check_timestamp(raw: str, now: float, provider: str, header: str) -> None:
    try:
        ts = float(raw)
    except ValueError:
        try:
            ts = datetime.fromisoformat(raw).timestamp()
        except ValueError:
            raise SignatureError(f"{provider} {header} header is not a timestamp") from None
    if ts > 1e11:  # milliseconds
        ts /= 1000.0
    tolerance = _tolerance()
    if abs(now - ts) > tolerance:
        raise SignatureError(
            f"{provider} {header} is {int(now - ts)}s from now, outside the {int(tolerance)}s tolerance (replay?)"
        )


def _b64decode(value: str) -> bytes:
    """Strict base64 (standard alphabet; urlsafe accepted), padding optional."""
    text = value.strip()
    padded = text + "=" * (-len(text) % 4)
    try:
        return base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError):
        return base64.urlsafe_b64decode(padded)  # raises binascii.Error if not base64 either


# --- Twilio ------------------------------------------------------------------------------

class _TwilioParams(dict):
    """name -> [values], with the ``getlist`` the Twilio validator uses for repeated names."""

    def getlist(self, key: str) -> list[str]:
        return list(self[key])


def _verify_twilio(request: SignedRequest, now: float) -> None:
    from twilio import request_validator as tv

    token = _setting("TWILIO_AUTH_TOKEN", "Twilio")
    signature = _require_header(request, "X-Twilio-Signature", "Twilio")

    algorithm = None
    settings_header = request.header("X-Twilio-Webhooks-Signature-Settings")
    if settings_header and hasattr(tv, "get_signature_algorithm"):
        algorithm = tv.get_signature_algorithm(settings_header)
        if algorithm.upper() not in getattr(tv, "_HASH_FUNCTIONS", {"HMAC_SHA1": None}):
            raise SignatureError("Twilio request names a signature algorithm this twilio library does not support")

    query = parse_qs(urlsplit(request.url).query)
    params: Any
    if "bodySHA256" in query:
        # JSON (non-form) body: the URL carries the body's SHA-256; the library checks it.
        try:
            params = request.body.decode("utf-8")
        except UnicodeDecodeError:
            raise SignatureError("Twilio request body is not UTF-8") from None
    else:
        params = _TwilioParams(_form_lists(request))

    validator = tv.RequestValidator(token)
    try:
        ok = validator.validate(request.url, params, signature, algorithm) if algorithm else \
            validator.validate(request.url, params, signature)
    except (ValueError, TypeError) as exc:
        raise SignatureError(f"Twilio signature could not be checked ({type(exc).__name__})") from None
    if not ok:
        raise SignatureError(
            "Twilio X-Twilio-Signature does not match this URL and these parameters "
            "(wrong TWILIO_AUTH_TOKEN, tampered request, or the public URL was rebuilt differently)"
        )


# --- Plivo -------------------------------------------------------------------------------

def _verify_plivo(request: SignedRequest, now: float) -> None:
    from plivo.exceptions import ValidationError
    from plivo.utils.signature_v3 import validate_v3_signature

    token = _setting("PLIVO_AUTH_TOKEN", "Plivo")
    nonce = _require_header(request, "X-Plivo-Signature-V3-Nonce", "Plivo")
    signatures = [
        part.strip()
        for name in ("X-Plivo-Signature-V3", "X-Plivo-Signature-Ma-V3")
        for part in request.header(name).split(",")
        if part.strip()
    ]
    if not signatures:
        raise SignatureError("Plivo request has no X-Plivo-Signature-V3 header")
    method = _method(request)
    if method not in ("GET", "POST"):
        raise SignatureError(f"Plivo signs GET and POST requests only, not {method or 'no method'}")
    if urlsplit(request.url).scheme.lower() not in ("http", "https"):
        raise SignatureError("Plivo V3 signatures are checked on http(s) URLs only")

    params: dict[str, Any] = {k: (v[0] if len(v) == 1 else v) for k, v in _form_lists(request).items()}
    try:
        ok = validate_v3_signature(
            method=method, uri=request.url, nonce=nonce, auth_token=token,
            v3_signature=",".join(signatures), params=params,
        )
    except (ValidationError, TypeError, ValueError) as exc:  # plivo validates its arguments
        raise SignatureError(f"Plivo signature could not be checked ({type(exc).__name__})") from None
    if not ok:
        raise SignatureError(
            "Plivo X-Plivo-Signature-V3 does not match this URL, nonce and parameters "
            "(wrong PLIVO_AUTH_TOKEN, tampered request, or the public URL was rebuilt differently)"
        )


# --- Telnyx ------------------------------------------------------------------------------

def _verify_telnyx(request: SignedRequest, now: float) -> None:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    key_b64 = _setting("TELNYX_PUBLIC_KEY", "Telnyx")
    try:
        public_key = Ed25519PublicKey.from_public_bytes(_b64decode(key_b64))
    except (binascii.Error, ValueError):
        raise SignatureError("TELNYX_PUBLIC_KEY is not a base64 Ed25519 public key (32 bytes)") from None

    signature_b64 = _require_header(request, "telnyx-signature-ed25519", "Telnyx")
    timestamp = _require_header(request, "telnyx-timestamp", "Telnyx")
    try:
        signature = _b64decode(signature_b64)
    except (binascii.Error, ValueError):
        raise SignatureError("Telnyx telnyx-signature-ed25519 header is not base64") from None
    _check_timestamp(timestamp, now, "Telnyx", "telnyx-timestamp")
    try:
        public_key.verify(signature, timestamp.encode("utf-8") + b"|" + request.body)
    except InvalidSignature:
        raise SignatureError(
            "Telnyx telnyx-signature-ed25519 does not match the timestamp and body "
            "(wrong TELNYX_PUBLIC_KEY or tampered request)"
        ) from None


# --- Daily -------------------------------------------------------------------------------

_DAILY_HEADERS = (
    ("X-Webhook-Signature", "X-Webhook-Timestamp"),  # Daily REST webhooks
    ("X-Pinless-Signature", "X-Pinless-Timestamp"),  # pinless dial-in room_creation_api (hmac)
)


def _verify_daily(request: SignedRequest, now: float) -> None:
    secret = _setting("DAILY_WEBHOOK_SECRET", "Daily")
    for sig_name, ts_name in _DAILY_HEADERS:
        signature = request.header(sig_name)
        if signature:
            timestamp = request.header(ts_name)
            if not timestamp:
                raise SignatureError(f"Daily request has {sig_name} but no {ts_name} header")
            break
    else:
        raise SignatureError("Daily request has no X-Webhook-Signature (or X-Pinless-Signature) header")

    _check_timestamp(timestamp, now, "Daily", ts_name)
    keys: list[bytes] = []
    try:
        keys.append(_b64decode(secret))
    except (binascii.Error, ValueError):
        pass
    keys.append(secret.encode("utf-8"))
    message = timestamp.encode("utf-8") + b"." + request.body
    given = signature.encode("utf-8")
    for key in keys:
        expected = base64.b64encode(hmac.new(key, message, hashlib.sha256).digest())
        if hmac.compare_digest(expected, given):
            return
    raise SignatureError(
        f"Daily {sig_name} does not match the timestamp and body (wrong DAILY_WEBHOOK_SECRET or tampered request)"
    )


_VERIFIERS = {
    "twilio": _verify_twilio,
    "plivo": _verify_plivo,
    "telnyx": _verify_telnyx,
    "daily": _verify_daily,
}
