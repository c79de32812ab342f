"""Webhook signing, URL checks and the retry schedule."""

import hashlib
import hmac

import pytest
from django.core.exceptions import ValidationError

from postcall import webhooks
from postcall.models import WebhookEndpoint
from voicebot import signing


def test_signature_is_hmac_sha256_of_timestamp_dot_body():
    body = b'{"event":"call.ended"}'
    header = signing.sign("s3cret", body, 1700000000)
    expected = hmac.new(b"s3cret", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert header == f"t=1700000000,v1={expected}"
    assert webhooks.verify_signature("s3cret", header, body, now=1700000010)
    assert not webhooks.verify_signature("other", header, body, now=1700000010)
    assert not webhooks.verify_signature("s3cret", header, body + b" ", now=1700000010)
    assert not webhooks.verify_signature("s3cret", header, body, now=1700000000 + 3600)  # replayed later
    assert not webhooks.verify_signature("s3cret", "garbage", body)


def test_retry_schedule_starts_within_30s_and_backs_off_for_over_a_day():
    delays = webhooks.retry_schedule()
    assert delays[0] <= 30
    assert all(b >= a for a, b in zip(delays, delays[1:]))
    assert delays[1] > delays[0]
    assert sum(delays) >= 24 * 3600


@pytest.mark.parametrize("url, message", [
    ("ftp://example.com/hook", "http:// or https://"),
    ("https://user:pw@example.com/hook", "no user name or password"),
    ("http://169.254.169.254/latest/meta-data", "link-local"),
    ("http://127.0.0.1:8111/hook", "loopback address"),
    ("http://10.1.2.3/hook", "private address"),
    ("http://100.64.1.2/hook", "CGNAT"),
    ("https://no-such-host.invalid/hook", "does not resolve"),
    ("https://example.com/hook#frag", "fragment"),
])
def test_bad_webhook_urls_are_rejected_when_saved(company_a, url, message, settings):
    settings.OUTBOUND_ALLOW_PRIVATE = False
    endpoint = WebhookEndpoint(company=company_a, url=url, events=["call.ended"], secret="x")
    with pytest.raises(ValidationError) as info:
        endpoint.full_clean()
    assert message in str(info.value.message_dict["url"])


def test_unknown_or_no_events_are_rejected(company_a, private_webhooks):
    with pytest.raises(ValidationError, match="call.exploded"):
        WebhookEndpoint(company=company_a, url="http://127.0.0.1/h", events=["call.exploded"], secret="x").full_clean()
    with pytest.raises(ValidationError) as info:
        WebhookEndpoint(company=company_a, url="http://127.0.0.1/h", events=[], secret="x").full_clean()
    assert "events" in info.value.message_dict


def test_admin_refuses_a_bad_url_and_saves_a_good_one(client_a, company_a, settings):
    settings.OUTBOUND_ALLOW_PRIVATE = False
    form = {"company": company_a.pk, "url": "http://169.254.169.254/latest", "events": ["call.ended"],
            "secret": "whsec_abc", "active": "on"}
    response = client_a.post("/admin/postcall/webhookendpoint/add/", form)
    assert response.status_code == 200
    assert "link-local" in response.content.decode()
    assert not WebhookEndpoint.objects.exists()
    settings.OUTBOUND_ALLOW_PRIVATE = True
    response = client_a.post("/admin/postcall/webhookendpoint/add/", {**form, "url": "http://127.0.0.1:8112/hook"})
    assert response.status_code == 302, response.content.decode()[:2000]
    assert WebhookEndpoint.objects.get().events == ["call.ended"]


def test_verify_signature_accepts_a_fresh_header():
    body = b"{}"
    assert webhooks.verify_signature("k", signing.sign("k", body), body)
