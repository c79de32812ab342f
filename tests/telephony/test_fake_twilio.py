"""The fake Twilio cloud for outbound calls (pipelines/live/fake_twilio.py), against a small stand-in
for the platform: a Starlette app that verifies X-Twilio-Signature on its answer Url and status
callback, answers TwiML that connects a Media Stream to its own websocket, records what arrives
there and sends some bot audio (and a mark) back."""

from __future__ import annotations

import audioop
import base64
import json
import re
import threading
import wave
from collections import defaultdict
from urllib.parse import parse_qsl

import httpx
import numpy as np
import pytest
from twilio.request_validator import RequestValidator

from pipelines.live.fake_twilio import (
    APPLICATION_ERROR,
    Answers,
    Busy,
    Fails,
    FakeTwilioCloud,
    Keys,
    NoAnswer,
    Say,
    Voicemail,
    WaitBot,
)
from tests.ports import free_port
from tests.waiting import wait_until

SID, TOKEN = "AC" + "1" * 32, "fake-twilio-test-token"
AUTH = (SID, TOKEN)


class Platform:
    """The platform's side: the answer Url, the status callback and the media websocket."""

    def __init__(self):
        self.validator = RequestValidator(TOKEN)
        self.answers: dict[str, list[tuple[dict, bool]]] = defaultdict(list)  # CallSid -> (form, signature ok)
        self.statuses: dict[str, list[tuple[dict, bool]]] = defaultdict(list)
        self.media: dict[str, list[dict]] = defaultdict(list)  # CallSid -> websocket messages, in order
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"

    async def _signed_form(self, request) -> tuple[dict, bool]:
        signature = request.headers.get("x-twilio-signature", "")
        if request.method == "GET":  # Twilio signs the whole URL, its query holding the parameters
            form = dict(parse_qsl(request.url.query, keep_blank_values=True))
            return form, self.validator.validate(str(request.url), {}, signature)
        form = dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))
        return form, self.validator.validate(str(request.url), form, signature)

    async def answer(self, request):
        from starlette.responses import Response

        form, ok = await self._signed_form(request)
        self.answers[form.get("CallSid", "")].append((form, ok))
        if not ok:
            return Response("bad signature", status_code=403)
        if form["To"].endswith("500"):
            return Response("boom", status_code=500)
        if form["To"].endswith("777"):
            twiml = "<Response><Say>Sorry, goodbye.</Say><Hangup/></Response>"
        else:
            twiml = (f'<?xml version="1.0" encoding="UTF-8"?><Response><Connect><Stream url="ws://127.0.0.1:'
                     f'{self.port}/media"><Parameter name="token" value="tok-{form["CallSid"][-4:]}"/>'
                     f"</Stream></Connect></Response>")
        return Response(twiml, media_type="text/xml")

    async def status(self, request):
        from starlette.responses import Response

        form, ok = await self._signed_form(request)
        self.statuses[form.get("CallSid", "")].append((form, ok))
        return Response("", status_code=204 if ok else 403)

    async def media_ws(self, websocket):
        from starlette.websockets import WebSocketDisconnect

        await websocket.accept()
        received = []  # filed under the call's sid once ``start`` names it
        try:
            while True:
                message = json.loads(await websocket.receive_text())
                received.append(message)
                if message["event"] == "start":
                    self.media[message["start"]["callSid"]] = received
                    tone = (np.sin(2 * np.pi * 440 * np.arange(2400) / 8000) * 6000).astype(np.int16).tobytes()
                    payload = base64.b64encode(audioop.lin2ulaw(tone, 2)).decode()
                    stream_sid = message["streamSid"]
                    await websocket.send_text(json.dumps({"event": "media", "streamSid": stream_sid,
                                                          "media": {"payload": payload}}))
                    await websocket.send_text(json.dumps({"event": "mark", "streamSid": stream_sid,
                                                          "mark": {"name": "greeting-done"}}))
                if message["event"] == "stop":
                    break
        except WebSocketDisconnect:
            pass

    def __enter__(self):
        import uvicorn
        from starlette.applications import Starlette
        from starlette.routing import Route, WebSocketRoute

        app = Starlette(routes=[Route("/answer", self.answer, methods=["GET", "POST"]),
                                Route("/status", self.status, methods=["GET", "POST"]),
                                WebSocketRoute("/media", self.media_ws)])
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                                    ws="websockets", ws_ping_interval=None, lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        wait_until(lambda: self.server.started or not self.thread.is_alive(), 10, what="the platform stand-in")
        assert self.server.started, "the platform stand-in did not start"
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(10)

    def events(self, call_sid: str) -> list[str]:
        return [m["event"] for m in self.media[call_sid]]

    def inbound_pcm(self, call_sid: str) -> np.ndarray:
        chunks = [audioop.ulaw2lin(base64.b64decode(m["media"]["payload"]), 2)
                  for m in self.media[call_sid] if m["event"] == "media"]
        return np.frombuffer(b"".join(chunks), dtype=np.int16)


@pytest.fixture(scope="module")
def platform():
    with Platform() as stand_in:
        yield stand_in


@pytest.fixture(scope="module")
def cloud():
    fake = FakeTwilioCloud(SID, TOKEN)
    fake.start(port=free_port())
    yield fake
    fake.close()


def calls_url(cloud, account=SID) -> str:
    return f"{cloud.url}/2010-04-01/Accounts/{account}/Calls.json"


def place(cloud, platform, to: str, **extra) -> str:
    data = {"To": to, "From": "+15005550006", "Url": platform.url + "/answer?campaign=7",
            "StatusCallback": platform.url + "/status?call=ref%3A42", **extra}
    response = httpx.post(calls_url(cloud), data=data, auth=AUTH, timeout=10)
    assert response.status_code == 201, response.text
    return response.json()["sid"]


def write_wav(path, samples: np.ndarray, rate: int = 16000) -> str:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.astype(np.int16).tobytes())
    return str(path)


def peak_share(pcm: np.ndarray, hz: float) -> float:
    """How much of the signal's spectral energy lies within 30 Hz of ``hz`` (8 kHz PCM)."""
    spectrum = np.abs(np.fft.rfft(pcm.astype(np.float64))) ** 2
    freqs = np.fft.rfftfreq(len(pcm), 1 / 8000)
    return float(spectrum[np.abs(freqs - hz) < 30].sum() / spectrum.sum())


def test_rest_authentication_and_errors(cloud):
    good = {"To": "+15550000001", "From": "+15005550006", "Url": "http://127.0.0.1:9/answer"}
    cloud.callee("+15550000001", Fails())

    for auth, url in [(None, calls_url(cloud)), ((SID, "wrong"), calls_url(cloud)),
                      (AUTH, calls_url(cloud, "AC" + "2" * 32))]:
        response = httpx.post(url, data=good, auth=auth)
        assert response.status_code == 401
        assert response.json() == {"code": 20003, "message": "Authenticate",
                                   "more_info": "https://www.twilio.com/docs/errors/20003", "status": 401}

    for missing, code, named in [("To", 21201, "'To'"), ("From", 21213, "'From'"), ("Url", 21205, "Url")]:
        response = httpx.post(calls_url(cloud), data={k: v for k, v in good.items() if k != missing}, auth=AUTH)
        assert response.status_code == 400
        body = response.json()
        assert (body["code"], body["status"]) == (code, 400) and named in body["message"]
        assert body["more_info"] == f"https://www.twilio.com/docs/errors/{code}"
    response = httpx.post(calls_url(cloud), data={**good, "StatusCallbackEvent": "answered hung"}, auth=AUTH)
    assert (response.status_code, response.json()["code"]) == (400, 21626)

    response = httpx.post(calls_url(cloud), data=good, auth=AUTH)
    assert response.status_code == 201
    created = response.json()
    assert re.fullmatch(r"CA[0-9a-f]{32}", created["sid"])
    assert {k: created[k] for k in ("status", "to", "from", "direction", "account_sid", "api_version")} == {
        "status": "queued", "to": "+15550000001", "from": "+15005550006", "direction": "outbound-api",
        "account_sid": SID, "api_version": "2010-04-01"}
    assert created["uri"] == f"/2010-04-01/Accounts/{SID}/Calls/{created['sid']}.json"
    assert created["date_created"].endswith("+0000")

    call = cloud.wait(created["sid"], 10)
    assert (call.status, call.outcome, call.webhooks) == ("failed", "failed", [])
    fetched = httpx.get(f"{cloud.url}/2010-04-01/Accounts/{SID}/Calls/{created['sid']}.json", auth=AUTH)
    assert fetched.json()["status"] == "failed"

    unknown = httpx.post(f"{cloud.url}/2010-04-01/Accounts/{SID}/Calls/CA{'0' * 32}.json",
                         data={"Status": "completed"}, auth=AUTH)
    assert (unknown.status_code, unknown.json()["code"]) == (404, 20404)
    assert (f"/2010-04-01/Accounts/{SID}/Calls.json", good) in cloud.requests


def test_busy_and_no_answer_send_only_the_asked_status_callbacks(cloud, platform):
    cloud.callee("+15550000002", Busy())
    sid = place(cloud, platform, "+15550000002", StatusCallbackEvent=["initiated", "ringing", "answered", "completed"])
    call = cloud.wait(sid, 10)
    sent = platform.statuses[sid]
    assert [form["CallStatus"] for form, _ in sent] == ["initiated", "ringing", "busy"]
    assert all(ok for _, ok in sent), "every status callback is signed as Twilio signs"
    assert [form["SequenceNumber"] for form, _ in sent] == ["0", "1", "2"]
    for form, _ in sent:
        assert {k: form[k] for k in ("CallSid", "AccountSid", "From", "To", "Direction", "ApiVersion",
                                     "CallbackSource")} == {
            "CallSid": sid, "AccountSid": SID, "From": "+15005550006", "To": "+15550000002",
            "Direction": "outbound-api", "ApiVersion": "2010-04-01", "CallbackSource": "call-progress-events"}
        assert form["Timestamp"].endswith("+0000")
    assert sent[-1][0]["CallDuration"] == "0" and "CallDuration" not in sent[0][0]
    assert sid not in platform.answers, "a busy callee never fetches the answer Url"
    assert [c.http_status for c in call.callbacks] == [204, 204, 204]
    assert (call.status, call.outcome) == ("busy", "busy")

    # No StatusCallbackEvent: Twilio sends the completed event alone (here by GET, signed over the URL).
    cloud.callee("+15550000003", NoAnswer(ring_secs=0.2))
    sid = place(cloud, platform, "+15550000003", Timeout="20", StatusCallbackMethod="GET")
    call = cloud.wait(sid, 10)
    [(form, ok)] = platform.statuses[sid]
    assert (form["CallStatus"], form["call"], ok) == ("no-answer", "ref:42", True)
    assert call.outcome == "no-answer" and sid not in platform.answers

    # The platform cancels a ringing call: canceled, and the callee never picks up.
    cloud.callee("+15550000009", Answers(ring_secs=20))
    sid = place(cloud, platform, "+15550000009", StatusCallbackEvent="ringing completed")
    wait_until(lambda: [f["CallStatus"] for f, _ in platform.statuses[sid]] == ["ringing"], 10, what="ringing")
    canceled = httpx.post(f"{cloud.url}/2010-04-01/Accounts/{SID}/Calls/{sid}.json", data={"Status": "canceled"},
                          auth=AUTH)
    assert canceled.json()["status"] == "canceled"
    call = cloud.wait(sid, 10)
    assert [f["CallStatus"] for f, _ in platform.statuses[sid]] == ["ringing", "canceled"]
    assert (call.outcome, call.answered_at) == ("canceled", None) and sid not in platform.answers


def test_answering_callee_streams_speech_and_keys_until_the_rest_hang_up(cloud, platform, tmp_path):
    t = np.arange(int(0.5 * 16000)) / 16000
    speech = np.concatenate([np.sin(2 * np.pi * 300 * t) * 9000, np.zeros(3200)])
    wav = write_wav(tmp_path / "hello.wav", speech)
    cloud.callee("+15550000004", Answers(script=[Say(wav), Keys("5#"), WaitBot(gap=0.3, timeout=10)], ring_secs=0.1))
    sid = place(cloud, platform, "+15550000004", StatusCallbackEvent="initiated ringing answered completed",
                MachineDetection="Enable")

    wait_until(lambda: "#" in [m["dtmf"]["digit"] for m in platform.media[sid] if m["event"] == "dtmf"], 15,
               what="the callee's keys on the stream")
    call = cloud.calls[sid]
    wait_until(lambda: call.stream.marks_echoed == ["greeting-done"], 10, what="the mark echoed once played")
    wait_until(lambda: call.first_bot_audio is not None, 10, what="the bot's audio at the callee")
    hung = httpx.post(f"{cloud.url}/2010-04-01/Accounts/{SID}/Calls/{sid}.json", data={"Status": "completed"},
                      auth=AUTH)
    assert (hung.status_code, hung.json()["status"]) == (200, "completed")
    call = cloud.wait(sid, 10)

    [(answer, ok)] = platform.answers[sid]
    assert ok, "the answer webhook is signed over the Url with its query"
    assert (answer["CallStatus"], answer["Direction"], answer["AnsweredBy"]) == ("in-progress", "outbound-api", "human")
    assert "<Stream" in call.answer_twiml and call.stream_parameters == {"token": f"tok-{sid[-4:]}"}

    messages = platform.media[sid]
    assert [m["event"] for m in messages[:2]] == ["connected", "start"]
    start = messages[1]["start"]
    assert (start["callSid"], start["accountSid"], start["customParameters"]) == (sid, SID, {"token": f"tok-{sid[-4:]}"})
    assert start["mediaFormat"] == {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}
    media = [m for m in messages if m["event"] == "media"]
    assert len(media) > 25 and all(m["media"]["track"] == "inbound" for m in media)
    sequence = [int(m["sequenceNumber"]) for m in messages[1:]]
    assert sequence == sorted(sequence) and len(set(sequence)) == len(sequence)
    pcm = platform.inbound_pcm(sid)
    assert np.abs(pcm[:4000]).max() > 5000, "the callee's speech arrives as mu-law media"
    assert peak_share(pcm[:3200], 300) > 0.8
    dtmf = [m["dtmf"] for m in messages if m["event"] == "dtmf"]
    assert dtmf == [{"track": "inbound_track", "digit": "5"}, {"track": "inbound_track", "digit": "#"}]
    assert messages[-1]["event"] == "stop" and messages[-1]["stop"] == {"accountSid": SID, "callSid": sid}

    statuses = platform.statuses[sid]
    assert [form["CallStatus"] for form, _ in statuses] == ["initiated", "ringing", "in-progress", "completed"]
    assert all(ok for _, ok in statuses) and "CallDuration" in statuses[-1][0]
    assert (call.status, call.outcome) == ("completed", "platform-hung-up")
    assert len(call.say_ends) == 1 and call.answered_at < call.say_ends[0]
    assert np.abs(np.frombuffer(call.bot_audio, dtype=np.int16)).max() > 3000


def test_voicemail_plays_its_greeting_then_the_beep(cloud, platform, tmp_path):
    rng = np.random.default_rng(1)
    greeting = write_wav(tmp_path / "greeting.wav", rng.uniform(-6000, 6000, int(0.6 * 16000)))
    cloud.callee("+15550000005", Voicemail(greeting, ring_secs=0.1, record_secs=10))
    sid = place(cloud, platform, "+15550000005", MachineDetection="Enable")
    # Greeting (0.6 s), beep (0.5 s), then the recording's silence: hang up 0.4 s into it.
    wait_until(lambda: len([m for m in platform.media[sid] if m["event"] == "media"]) > 75, 15,
               what="the greeting, the beep and some silence")
    httpx.post(f"{cloud.url}/2010-04-01/Accounts/{SID}/Calls/{sid}.json", data={"Status": "completed"}, auth=AUTH)
    call = cloud.wait(sid, 10)
    assert platform.answers[sid][0][0]["AnsweredBy"] == "machine_start"

    pcm = platform.inbound_pcm(sid)
    loud = np.nonzero(np.abs(pcm) > 2000)[0]
    first, last = loud[0], loud[-1]
    greeting_part, beep_part = pcm[first:first + 3200], pcm[last - 3200:last]
    assert peak_share(beep_part, 1000) > 0.8, "a 1 kHz beep ends the greeting"
    assert peak_share(greeting_part, 1000) < 0.2, "the greeting comes first"
    assert 0.9 < (last - first) / 8000 < 1.4
    assert np.abs(pcm[last + 80:]).max() < 200 and len(pcm) - last > 1600, "then it records silence"
    assert (call.status, call.outcome) == ("completed", "platform-hung-up")

    # DetectMessageEnd: Twilio waits out the greeting and beep before it fetches the Url.
    cloud.callee("+15550000006", Voicemail(greeting, ring_secs=0.1, record_secs=0.5))
    sid = place(cloud, platform, "+15550000006", MachineDetection="DetectMessageEnd")
    call = cloud.wait(sid, 15)
    answer = platform.answers[sid][0][0]
    assert answer["AnsweredBy"] == "machine_end_beep" and int(answer["MachineDetectionDuration"]) >= 1000
    assert np.abs(platform.inbound_pcm(sid)).max() < 200, "the stream carries only the recording's silence"
    assert (call.status, call.outcome) == ("completed", "callee-hung-up")


def test_twiml_say_hangup_application_error_and_transfer(cloud, platform):
    cloud.callee("+15550000777", Answers(ring_secs=0.05))
    call = cloud.wait(place(cloud, platform, "+15550000777", Method="GET"), 10)
    assert (call.said, call.outcome, call.status, call.stream) == (["Sorry, goodbye."], "hung-up-by-twiml",
                                                                   "completed", None)
    [(answer, ok)] = platform.answers[call.sid]
    assert ok and (answer["campaign"], answer["CallStatus"]) == ("7", "in-progress")

    cloud.callee("+15550000500", Answers(ring_secs=0.05))
    call = cloud.wait(place(cloud, platform, "+15550000500"), 10)
    assert call.said == [APPLICATION_ERROR] and call.error["code"] == 11200
    assert (call.outcome, call.status, call.webhooks[0].http_status) == ("application-error", "completed", 500)

    cloud.callee("+15550000008", Answers(ring_secs=0.05))
    sid = place(cloud, platform, "+15550000008")
    wait_until(lambda: len(platform.media[sid]) > 5, 10, what="the stream")
    dial = httpx.post(f"{cloud.url}/2010-04-01/Accounts/{SID}/Calls/{sid}.json",
                      data={"Twiml": "<Response><Dial>+15550100</Dial></Response>"}, auth=AUTH)
    assert dial.status_code == 200
    call = cloud.wait(sid, 10)
    assert (call.transfers, call.outcome, call.status) == (["+15550100"], "transferred", "completed")
    assert platform.events(sid)[-1] == "stop"
    late = httpx.post(f"{cloud.url}/2010-04-01/Accounts/{SID}/Calls/{sid}.json",
                      data={"Twiml": "<Response><Hangup/></Response>"}, auth=AUTH)
    assert (late.status_code, late.json()["code"]) == (400, 21220)


def test_fake_callees_refuses_to_start_without_the_twilio_account(settings):
    from django.core.management import CommandError, call_command

    settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN = SID, ""
    with pytest.raises(CommandError, match="TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN must be set"):
        call_command("fake_callees", "--port", str(free_port()))
