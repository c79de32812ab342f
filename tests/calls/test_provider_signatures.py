"""Provider webhook signatures: telephony.signatures against the documented schemes.

Requests are signed with telephony.signatures_testing (plain hmac/hashlib/cryptography
from the providers' documented algorithms), verified by telephony.signatures (the
providers' libraries), plus published test vectors. Pure unit tests: no database.
"""

import base64
import hashlib
import hmac
import json
from urllib.parse import urlencode

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from telephony.signatures import SignatureError, SignedRequest, verify
from telephony.signatures_testing import (
    sign_daily,
    sign_plivo_v3,
    sign_telnyx,
    sign_twilio,
    telnyx_public_key_b64,
    twilio_body_sha256,
)

NOW = 1_760_000_000.0

TWILIO_TOKEN = "tw-secret-token-0123456789abcdef"
PLIVO_TOKEN = "plivo-secret-token-ZmFrZQ"
DAILY_SECRET = base64.b64encode(b"daily-secret-key-bytes-0123456789").decode()


def form_request(url, form, headers, method="POST"):
    body = urlencode(form).encode() if method == "POST" else b""
    return SignedRequest(method=method, url=url, headers=headers, body=body, form=dict(form) if method == "POST" else None)


def accepted(provider, request, now=NOW):
    verify(provider, request, now=now)


def refused(provider, request, match, now=NOW):
    with pytest.raises(SignatureError, match=match) as info:
        verify(provider, request, now=now)
    message = str(info.value)
    for secret in (TWILIO_TOKEN, PLIVO_TOKEN, DAILY_SECRET):
        assert secret not in message
    return message


@pytest.fixture
def secrets(settings):
    settings.TWILIO_AUTH_TOKEN = TWILIO_TOKEN
    settings.PLIVO_AUTH_TOKEN = PLIVO_TOKEN
    settings.DAILY_WEBHOOK_SECRET = DAILY_SECRET
    settings.TELEPHONY_SIGNATURE_TOLERANCE_SEC = 300
    return settings


@pytest.fixture
def telnyx_key(secrets):
    key = Ed25519PrivateKey.generate()
    secrets.TELNYX_PUBLIC_KEY = telnyx_public_key_b64(key)
    return key


def test_unknown_provider_is_refused(secrets):
    request = SignedRequest("POST", "https://voice.example/x", {}, b"")
    refused("exotel", request, "unknown provider")


def test_headers_are_case_insensitive():
    request = SignedRequest("POST", "https://voice.example/x", {"X-Twilio-Signature": "abc"}, b"")
    assert request.headers["x-twilio-signature"] == "abc"
    assert request.headers.get("X-TWILIO-SIGNATURE") == "abc"


# --- Twilio ------------------------------------------------------------------------------

TWILIO_DOC_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
TWILIO_DOC_PARAMS = {"CallSid": "CA1234567890ABCDE", "Digits": "1234", "To": "+18005551212"}


@pytest.mark.parametrize("number, published", [
    # Twilio's "Webhooks security" docs example (auth token 12345).
    ("+12349013030", "0/KCTR6DLpKmkAf8muzZqo1nDgQ="),
    # twilio-python's own request-validator test vector (same URL and token).
    ("+14158675309", "RSOYDt4T1cUTdK1PDd93/VVr8B8="),
])
def test_twilio_published_vectors(settings, number, published):
    params = dict(TWILIO_DOC_PARAMS, Caller=number, From=number)
    assert sign_twilio(TWILIO_DOC_URL, params, "12345") == published
    settings.TWILIO_AUTH_TOKEN = "12345"
    request = form_request(TWILIO_DOC_URL, params, {"X-Twilio-Signature": published})
    accepted("twilio", request, now=NOW)
    settings.TWILIO_AUTH_TOKEN = "54321"
    refused("twilio", request, "does not match")


TW_URL = "https://voice.example/telephony/twilio/voice?bot=alpha"
TW_FORM = {"CallSid": "CA42", "From": "+4930123", "To": "+4930999", "AccountSid": "AC1"}


def twilio_request(url=TW_URL, form=TW_FORM, signed_url=None, signed_form=None, token=TWILIO_TOKEN):
    signature = sign_twilio(signed_url or url, signed_form if signed_form is not None else form, token)
    return form_request(url, form, {"x-twilio-signature": signature})


def test_twilio_signed_form_passes(secrets):
    accepted("twilio", twilio_request())
    # Header name in any case; form parsed from the raw body when not given.
    request = twilio_request()
    accepted("twilio", SignedRequest("post", request.url, {"X-TWILIO-SIGNATURE": request.headers["X-Twilio-Signature"]},
                                   request.body))


def test_twilio_signature_with_default_port_passes(secrets):
    request = twilio_request(url="https://voice.example:443/telephony/twilio/voice?bot=alpha", signed_url=TW_URL)
    accepted("twilio", request)


def test_twilio_missing_header(secrets):
    request = twilio_request()
    refused("twilio", SignedRequest("POST", request.url, {}, request.body, request.form), "no X-Twilio-Signature header")


def test_twilio_wrong_signature(secrets):
    refused("twilio", twilio_request(token="another-token"), "does not match")


def test_twilio_tampered_param(secrets):
    refused("twilio", twilio_request(form=dict(TW_FORM, To="+1900555"), signed_form=TW_FORM), "does not match")
    refused("twilio", twilio_request(form=dict(TW_FORM, Extra="1"), signed_form=TW_FORM), "does not match")


def test_twilio_tampered_raw_body_without_form(secrets):
    request = twilio_request()
    tampered = request.body.replace(b"CA42", b"CA43")
    refused("twilio", SignedRequest("POST", request.url, request.headers, tampered), "does not match")


def test_twilio_wrong_url(secrets):
    refused("twilio", twilio_request(url=TW_URL.replace("voice.example", "evil.example"), signed_url=TW_URL),
            "does not match")
    refused("twilio", twilio_request(url=TW_URL.replace("bot=alpha", "bot=beta"), signed_url=TW_URL), "does not match")


def test_twilio_missing_token(settings):
    settings.TWILIO_AUTH_TOKEN = ""
    refused("twilio", twilio_request(token=""), "TWILIO_AUTH_TOKEN is not set")


def test_twilio_websocket_get(secrets):
    url = "wss://voice.example/telephony/twilio/stream?bot=alpha&call=CA42"
    request = SignedRequest("GET", url, {"X-Twilio-Signature": sign_twilio(url, {}, TWILIO_TOKEN)}, b"")
    accepted("twilio", request)
    refused("twilio", SignedRequest("GET", url.replace("CA42", "CA43"), request.headers, b""), "does not match")


def test_twilio_json_body_sha256(secrets):
    body = json.dumps({"CallSid": "CA42", "Status": "completed"}).encode()
    url = f"https://voice.example/telephony/twilio/status?bodySHA256={twilio_body_sha256(body)}"
    headers = {"X-Twilio-Signature": sign_twilio(url, None, TWILIO_TOKEN), "Content-Type": "application/json"}
    accepted("twilio", SignedRequest("POST", url, headers, body))
    refused("twilio", SignedRequest("POST", url, headers, body.replace(b"completed", b"failed")), "does not match")


# --- Plivo -------------------------------------------------------------------------------

PL_URL = "https://voice.example/telephony/plivo/answer?bot=alpha"
PL_FORM = {"CallUUID": "c0ffee", "From": "4930123", "To": "4930999", "Direction": "inbound"}
NONCE = "05429567804466091622"


def plivo_request(url=PL_URL, form=PL_FORM, *, signed_url=None, signed_form=None, nonce=NONCE, sent_nonce=None,
                  token=PLIVO_TOKEN, method="POST"):
    signature = sign_plivo_v3(method, signed_url or url, nonce, token,
                              signed_form if signed_form is not None else (form if method == "POST" else {}))
    headers = {"X-Plivo-Signature-V3": signature, "X-Plivo-Signature-V3-Nonce": sent_nonce or nonce}
    return form_request(url, form, headers, method=method)


def test_plivo_signed_form_passes(secrets):
    accepted("plivo", plivo_request())
    request = plivo_request()
    accepted("plivo", SignedRequest("POST", request.url, request.headers, request.body))  # form from the body


def test_plivo_get_passes(secrets):
    url = "https://voice.example/telephony/plivo/answer?bot=alpha&CallUUID=c0ffee&From=4930123"
    accepted("plivo", plivo_request(url=url, form={}, method="GET"))
    refused("plivo", plivo_request(url=url.replace("c0ffee", "dead"), signed_url=url, form={}, method="GET"),
            "does not match")


def test_plivo_several_signatures_one_valid(secrets):
    request = plivo_request()
    good = request.headers["x-plivo-signature-v3"]
    other = sign_plivo_v3("POST", PL_URL, NONCE, "old-token", PL_FORM)
    headers = {"X-Plivo-Signature-V3": f"{other}, {good}", "X-Plivo-Signature-V3-Nonce": NONCE}
    accepted("plivo", SignedRequest("POST", PL_URL, headers, request.body, request.form))
    headers["X-Plivo-Signature-V3"] = f"{other},{other}"
    refused("plivo", SignedRequest("POST", PL_URL, headers, request.body, request.form), "does not match")


def test_plivo_missing_headers(secrets):
    request = plivo_request()
    only_nonce = {"X-Plivo-Signature-V3-Nonce": NONCE}
    refused("plivo", SignedRequest("POST", PL_URL, only_nonce, request.body, request.form),
            "no X-Plivo-Signature-V3 header")
    only_sig = {"X-Plivo-Signature-V3": request.headers["X-Plivo-Signature-V3"]}
    refused("plivo", SignedRequest("POST", PL_URL, only_sig, request.body, request.form),
            "no X-Plivo-Signature-V3-Nonce header")


def test_plivo_wrong_signature(secrets):
    refused("plivo", plivo_request(token="another-token"), "does not match")


def test_plivo_wrong_nonce(secrets):
    refused("plivo", plivo_request(sent_nonce="11111111111111111111"), "does not match")


def test_plivo_tampered_param(secrets):
    refused("plivo", plivo_request(form=dict(PL_FORM, To="1900555"), signed_form=PL_FORM), "does not match")


def test_plivo_wrong_url(secrets):
    refused("plivo", plivo_request(url=PL_URL.replace("voice.example", "evil.example"), signed_url=PL_URL),
            "does not match")


def test_plivo_missing_token(settings):
    settings.PLIVO_AUTH_TOKEN = ""
    refused("plivo", plivo_request(token=""), "PLIVO_AUTH_TOKEN is not set")


def test_plivo_unsupported_method_and_scheme(secrets):
    request = plivo_request()
    refused("plivo", SignedRequest("PUT", PL_URL, request.headers, request.body, request.form), "GET and POST")
    refused("plivo", SignedRequest("POST", PL_URL.replace("https", "wss"), request.headers, request.body, request.form),
            "http")


# --- Telnyx ------------------------------------------------------------------------------

TX_BODY = json.dumps({"data": {"event_type": "call.initiated", "payload": {"call_control_id": "v3:abc"}}}).encode()
TX_URL = "https://voice.example/telephony/telnyx/webhook"


def telnyx_request(key, body=TX_BODY, timestamp=int(NOW), sent_timestamp=None, sent_body=None):
    headers = {
        "telnyx-signature-ed25519": sign_telnyx(key, timestamp, body),
        "telnyx-timestamp": str(sent_timestamp if sent_timestamp is not None else timestamp),
    }
    return SignedRequest("POST", TX_URL, headers, sent_body if sent_body is not None else body)


def test_telnyx_signed_passes(telnyx_key):
    accepted("telnyx", telnyx_request(telnyx_key))
    accepted("telnyx", telnyx_request(telnyx_key, timestamp=int(NOW) - 299))


def test_telnyx_missing_headers(telnyx_key):
    request = telnyx_request(telnyx_key)
    refused("telnyx", SignedRequest("POST", TX_URL, {"Telnyx-Timestamp": str(int(NOW))}, TX_BODY),
            "no telnyx-signature-ed25519 header")
    no_ts = {"Telnyx-Signature-Ed25519": request.headers["telnyx-signature-ed25519"]}
    refused("telnyx", SignedRequest("POST", TX_URL, no_ts, TX_BODY), "no telnyx-timestamp header")


def test_telnyx_wrong_signature(telnyx_key):
    refused("telnyx", telnyx_request(Ed25519PrivateKey.generate()), "does not match")


def test_telnyx_tampered_body_and_timestamp(telnyx_key):
    refused("telnyx", telnyx_request(telnyx_key, sent_body=TX_BODY.replace(b"v3:abc", b"v3:xyz")), "does not match")
    refused("telnyx", telnyx_request(telnyx_key, sent_timestamp=int(NOW) + 1), "does not match")


def test_telnyx_stale_and_future_timestamps(telnyx_key):
    refused("telnyx", telnyx_request(telnyx_key, timestamp=int(NOW) - 301), "tolerance")
    refused("telnyx", telnyx_request(telnyx_key, timestamp=int(NOW) + 301), "tolerance")


def test_telnyx_missing_or_bad_key(settings):
    key = Ed25519PrivateKey.generate()
    settings.TELNYX_PUBLIC_KEY = ""
    refused("telnyx", telnyx_request(key), "TELNYX_PUBLIC_KEY is not set")
    settings.TELNYX_PUBLIC_KEY = "not base64 !!"
    refused("telnyx", telnyx_request(key), "TELNYX_PUBLIC_KEY is not a base64 Ed25519 public key")


# --- Daily -------------------------------------------------------------------------------

DY_BODY = json.dumps({"To": "+4930999", "From": "+4930123", "callId": "c-1", "callDomain": "d-1"}).encode()
DY_URL = "https://voice.example/telephony/daily/dialin"


def daily_request(secret=DAILY_SECRET, body=DY_BODY, timestamp=int(NOW), sent_body=None, sent_timestamp=None,
                  spelling="Webhook"):
    headers = {
        f"X-{spelling}-Signature": sign_daily(secret, timestamp, body),
        f"X-{spelling}-Timestamp": str(sent_timestamp if sent_timestamp is not None else timestamp),
    }
    return SignedRequest("POST", DY_URL, headers, sent_body if sent_body is not None else body)


def test_daily_signed_passes(secrets):
    accepted("daily", daily_request())
    accepted("daily", daily_request(spelling="Pinless"))
    accepted("daily", daily_request(timestamp=int(NOW * 1000) - 5000))  # milliseconds


def test_daily_matches_documented_hmac(secrets):
    timestamp = str(int(NOW))
    expected = base64.b64encode(
        hmac.new(base64.b64decode(DAILY_SECRET), f"{timestamp}.".encode() + DY_BODY, hashlib.sha256).digest()
    ).decode()
    headers = {"X-Webhook-Signature": expected, "X-Webhook-Timestamp": timestamp}
    accepted("daily", SignedRequest("POST", DY_URL, headers, DY_BODY))


def test_daily_plain_string_hmac_secret(settings):
    settings.DAILY_WEBHOOK_SECRET = "chosen pinless hmac!"  # not base64
    timestamp = str(int(NOW))
    signature = base64.b64encode(
        hmac.new(b"chosen pinless hmac!", f"{timestamp}.".encode() + DY_BODY, hashlib.sha256).digest()
    ).decode()
    headers = {"X-Pinless-Signature": signature, "X-Pinless-Timestamp": timestamp}
    accepted("daily", SignedRequest("POST", DY_URL, headers, DY_BODY), now=NOW)
    headers["X-Pinless-Signature"] = sign_daily(DAILY_SECRET, timestamp, DY_BODY)
    refused("daily", SignedRequest("POST", DY_URL, headers, DY_BODY), "does not match")


def test_daily_missing_headers(secrets):
    refused("daily", SignedRequest("POST", DY_URL, {"X-Webhook-Timestamp": str(int(NOW))}, DY_BODY),
            "no X-Webhook-Signature")
    request = daily_request()
    no_ts = {"X-Webhook-Signature": request.headers["X-Webhook-Signature"]}
    refused("daily", SignedRequest("POST", DY_URL, no_ts, DY_BODY), "no X-Webhook-Timestamp header")


def test_daily_wrong_signature(secrets):
    refused("daily", daily_request(secret=base64.b64encode(b"someone else").decode()), "does not match")


def test_daily_tampered_body_and_timestamp(secrets):
    refused("daily", daily_request(sent_body=DY_BODY.replace(b"+4930999", b"+1900555")), "does not match")
    refused("daily", daily_request(sent_timestamp=int(NOW) - 1), "does not match")


def test_daily_stale_timestamp(secrets):
    refused("daily", daily_request(timestamp=int(NOW) - 301), "tolerance")
    refused("daily", daily_request(timestamp=int(NOW) + 301), "tolerance")
    refused("daily", daily_request(timestamp="yesterday"), "not a timestamp")


def test_daily_missing_secret(settings):
    settings.DAILY_WEBHOOK_SECRET = ""
    refused("daily", daily_request(secret=""), "DAILY_WEBHOOK_SECRET is not set")


def test_tolerance_setting_is_used(settings, telnyx_key):
    request = telnyx_request(telnyx_key, timestamp=int(NOW) - 100)
    accepted("telnyx", request)
    settings.TELEPHONY_SIGNATURE_TOLERANCE_SEC = 60
    refused("telnyx", request, "60s tolerance")


def test_twilio_signature_settings_header_algorithm(secrets):
    # X-Twilio-Webhooks-Signature-Settings names the HMAC (twilio library's get_signature_algorithm).
    data = TW_URL + "".join(k + TW_FORM[k] for k in sorted(TW_FORM))
    sha256_sig = base64.b64encode(hmac.new(TWILIO_TOKEN.encode(), data.encode(), hashlib.sha256).digest()).decode()
    headers = {"X-Twilio-Signature": sha256_sig, "X-Twilio-Webhooks-Signature-Settings": "key=k1,algorithm=HMAC_SHA256"}
    accepted("twilio", form_request(TW_URL, TW_FORM, headers))
    refused("twilio", form_request(TW_URL, TW_FORM, {"X-Twilio-Signature": sha256_sig}), "does not match")
    headers["X-Twilio-Webhooks-Signature-Settings"] = "key=k1,algorithm=HMAC_MD5"
    refused("twilio", form_request(TW_URL, TW_FORM, headers), "does not support")
