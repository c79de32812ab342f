"""Telnyx / Plivo / Exotel call control (their adapters) against a local fake of their REST APIs
(no models, no pipeline)."""

import asyncio
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from starlette.testclient import TestClient
from starlette.websockets import WebSocketState

from pipelines.config import BotConfig
from pipelines.live.runner import without_unsupported_transfer
from telephony.base import CallControl
from telephony.providers import ADAPTERS, exotel, plivo, rest, telnyx
from tests.calls.conftest import PLIVO_AUTH, TELNYX_AUTH


def run(coro):
    return asyncio.run(coro)


def plivo_call(call_uuid="plivo-call"):
    return plivo.plivo_control(call_uuid, transfer_url=lambda token: f"https://runner.example/t?token={token}")


def test_telnyx_hang_up_and_transfer_requests(fake_providers):
    control = telnyx.telnyx_control("v3:abc-123")
    run(control.hang_up())
    run(control.transfer("+4930999999"))
    assert fake_providers.requests == [
        ("POST", "/v2/calls/v3:abc-123/actions/hangup", TELNYX_AUTH, {}),
        ("POST", "/v2/calls/v3:abc-123/actions/transfer", TELNYX_AUTH, {"to": "+4930999999"}),
    ]


def test_plivo_hang_up_deletes_the_call_and_transfer_points_the_a_leg_at_signed_dial_xml(fake_providers):
    run(plivo_call().hang_up())
    run(plivo_call().transfer("+4930999999"))
    (method, path, auth, body), (method2, path2, auth2, body2) = fake_providers.requests
    assert (method, path, auth, body) == ("DELETE", "/v1/Account/MAtest/Call/plivo-call/", PLIVO_AUTH, None)
    assert (method2, path2, auth2) == ("POST", "/v1/Account/MAtest/Call/plivo-call/", PLIVO_AUTH)
    assert set(body2) == {"legs", "aleg_url", "aleg_method"}
    assert (body2["legs"], body2["aleg_method"]) == ("aleg", "POST")
    token = parse_qs(urlsplit(body2["aleg_url"]).query)["token"][0]
    assert body2["aleg_url"].startswith("https://runner.example/t?token=")
    assert plivo.transfer_target(token) == "+4930999999"


@pytest.mark.parametrize("answer", [(404, {"error": "not found"}),
                                    (422, {"errors": [{"code": "90018", "title": "Call has already ended"}]})])
def test_a_call_already_gone_is_ignored(fake_providers, answer):
    fake_providers.answer = answer
    run(telnyx.telnyx_control("v3:gone").hang_up())
    if answer[0] == 404:  # Plivo's "already gone" is a 404
        run(plivo_call("gone").hang_up())
    assert len(fake_providers.requests) == (2 if answer[0] == 404 else 1)


@pytest.mark.parametrize("answer", [(500, {"error": "boom"}), (401, {"error": "auth"}),
                                    (422, {"errors": [{"code": "90015", "title": "Invalid destination"}]})])
def test_other_errors_raise_for_the_caller_to_log(fake_providers, answer):
    fake_providers.answer = answer
    with pytest.raises(httpx.HTTPStatusError):
        run(telnyx.telnyx_control("v3:x").transfer("+4930999999"))
    with pytest.raises(httpx.HTTPStatusError):
        run(plivo_call().hang_up())


def test_missing_credentials_say_which_setting_and_send_nothing(fake_providers, settings):
    settings.TELNYX_API_KEY = ""
    settings.PLIVO_AUTH_TOKEN = ""
    with pytest.raises(rest.ProviderNotConfigured, match="TELNYX_API_KEY"):
        run(telnyx.telnyx_control("v3:x").hang_up())
    with pytest.raises(rest.ProviderNotConfigured, match="PLIVO_AUTH_TOKEN"):
        run(plivo_call().hang_up())
    assert fake_providers.requests == []


class StubWebSocket:
    def __init__(self):
        self.application_state = WebSocketState.CONNECTED
        self.closed = 0

    async def close(self, code: int = 1000):
        self.closed += 1
        self.application_state = WebSocketState.DISCONNECTED


def test_exotel_hangs_up_by_closing_the_stream_and_cannot_transfer(fake_providers):
    ws = StubWebSocket()
    control = ADAPTERS["exotel"].control({"call_id": "exotel-call"}, ws)
    assert control.transfer is None
    run(control.hang_up())
    run(control.hang_up())  # already closed (e.g. by the transport): nothing more
    assert ws.closed == 1 and fake_providers.requests == []


def bot_config(**overrides) -> BotConfig:
    fields = {"bot_id": 1, "company_id": 1, "slug": "b", "name": "B", "company_name": "C", "company_timezone": "UTC",
              "company_country": "US", "language": "en", "greeting": "Hi", "system_prompt": "", "voice": "",
              "stt_model": "", "llm_model": "", "temperature": 0.2, "max_tokens": 100,
              "transfer_number": "+4930999999"}
    return BotConfig(**{**fields, **overrides})


def test_a_call_that_cannot_transfer_runs_without_the_transfer_number():
    config = bot_config()
    no_transfer = exotel.exotel_control(StubWebSocket())
    assert without_unsupported_transfer(config, no_transfer, provider="exotel", call_id="ex-1").transfer_number == ""
    control = telnyx.telnyx_control("v3:x")
    assert without_unsupported_transfer(config, control, provider="telnyx", call_id="v3:x") is config
    # no call id: no control at all
    assert ADAPTERS["telnyx"].control({"call_id": ""}, None) == CallControl()
    assert ADAPTERS["plivo"].control({"stream_id": "s"}, None) == CallControl()


def test_telnyx_and_plivo_send_dtmf_others_cannot(fake_providers):
    run(telnyx.telnyx_control("v3:abc").send_dtmf("12#"))
    run(plivo_call().send_dtmf("34"))
    assert fake_providers.requests == [
        ("POST", "/v2/calls/v3:abc/actions/send_dtmf", TELNYX_AUTH, {"digits": "12#"}),
        ("POST", "/v1/Account/MAtest/Call/plivo-call/DTMF/", PLIVO_AUTH, {"digits": "34", "leg": "aleg"}),
    ]
    assert exotel.exotel_control(StubWebSocket()).send_dtmf is None
    assert ADAPTERS["twilio"].control({"call_id": "CA1"}, None).send_dtmf is None


def test_plivo_transfer_route_dials_only_a_signed_number():
    from pipelines.live.runner import CallHub, create_app

    client = TestClient(create_app(CallHub(), preload=False))  # no lifespan: no models loaded
    token = plivo.sign_transfer("+4930999999")
    answer = client.post("/telephony/plivo/transfer", params={"token": token})
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("application/xml")
    assert answer.text.endswith("<Response><Dial><Number>+4930999999</Number></Dial></Response>")
    assert client.get("/telephony/plivo/transfer", params={"token": token}).status_code == 200
    assert client.post("/telephony/plivo/transfer", params={"token": token[:-2] + "xx"}).status_code == 403
    assert client.post("/telephony/plivo/transfer").status_code == 403
