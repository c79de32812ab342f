"""The dial task against the providers' REST APIs faked at the HTTP boundary (Telnyx TeXML, Plivo),
and how it fails: the provider's error, an unreachable provider, a setting missing, a task run twice."""

from urllib.parse import parse_qs, urlsplit

import pytest

from telephony.outbound import read_call_ref
from telephony.tasks import dial_call
from tests.calls.conftest import PLIVO_AUTH, TELNYX_AUTH
from tests.ports import free_port
from voicebot.models import Call, PhoneNumber


@pytest.fixture
def placed(bot_a, settings):
    settings.RUNNER_PUBLIC_URL = "https://runner.example.com"

    def place(provider: str) -> Call:
        PhoneNumber.objects.get_or_create(company=bot_a.company, number="+4930123456",
                                          defaults={"bot": bot_a, "provider": provider})
        return Call.objects.create(company=bot_a.company, bot=bot_a, transport=provider, direction="outbound",
                                   status="queued", from_number="+4930123456", to_number="+49309876543")

    return place


def call_ref_of(url: str) -> int:
    return read_call_ref(parse_qs(urlsplit(url).query)["call"][0])


def test_telnyx_places_a_texml_call_whose_urls_name_the_placed_call(placed, fake_providers, settings):
    settings.TELNYX_TEXML_APP_ID = "app-1"
    fake_providers.answer = (200, {"data": {"call_sid": "v3:abc", "status": "queued"}})
    call = placed("telnyx")
    assert dial_call(call.pk) == "queued"
    method, path, auth, body = fake_providers.requests[0]
    assert (method, path, auth) == ("POST", "/v2/texml/calls/app-1", TELNYX_AUTH)
    assert (body["To"], body["From"]) == ("+49309876543", "+4930123456")
    assert body["Url"].startswith("https://runner.example.com/telephony/telnyx/outbound?call=")
    assert body["StatusCallback"].startswith("https://runner.example.com/telephony/telnyx/status?call=")
    assert call_ref_of(body["Url"]) == call_ref_of(body["StatusCallback"]) == call.pk
    call.refresh_from_db()
    assert (call.status, call.external_id) == ("queued", "v3:abc")


def test_plivo_fires_the_call_and_learns_its_uuid_from_the_first_callback(placed, fake_providers):
    fake_providers.answer = (201, {"message": "call fired", "request_uuid": "req-1", "api_id": "x"})
    call = placed("plivo")
    assert dial_call(call.pk) == "queued"
    method, path, auth, body = fake_providers.requests[0]
    assert (method, path, auth) == ("POST", "/v1/Account/MAtest/Call/", PLIVO_AUTH)
    assert (body["from"], body["to"], body["answer_method"]) == ("4930123456", "49309876543", "POST")
    assert call_ref_of(body["answer_url"]) == call_ref_of(body["hangup_url"]) == call.pk


def test_a_refused_or_unreachable_provider_or_a_missing_setting_fails_the_call_saying_why(placed, fake_providers,
                                                                                           settings):
    fake_providers.answer = (400, {"message": "invalid 'to' number"})
    call = placed("plivo")
    assert dial_call(call.pk) == "failed"
    call.refresh_from_db()
    assert (call.status, call.end_reason) == ("failed", "not_answered")
    assert "plivo refused the call: HTTP 400" in call.metrics["notes"][0] and "invalid 'to'" in call.metrics["notes"][0]

    settings.PLIVO_API_BASE_URL = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    unreachable = placed("plivo")
    assert dial_call(unreachable.pk) == "failed"
    unreachable.refresh_from_db()
    assert "plivo could not be reached" in unreachable.metrics["notes"][0]

    settings.TELNYX_TEXML_APP_ID = ""
    PhoneNumber.objects.all().delete()
    unconfigured = placed("telnyx")
    assert dial_call(unconfigured.pk) == "failed"
    unconfigured.refresh_from_db()
    assert "TELNYX_TEXML_APP_ID not set" in unconfigured.metrics["notes"][0]


def test_a_task_run_again_never_dials_twice(placed, fake_providers):
    """acks_late: a worker lost after the REST call runs the task again; the person is not called twice."""
    fake_providers.answer = (201, {"message": "call fired", "request_uuid": "req-1"})
    call = placed("plivo")
    assert dial_call(call.pk) == "queued"
    assert dial_call(call.pk) == ""  # the second run finds the dial already requested
    assert len(fake_providers.requests) == 1
