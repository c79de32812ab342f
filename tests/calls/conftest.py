"""Fixtures for live-call tests: models loaded once per session, a bot with a short prompt."""

import base64
from pathlib import Path
from urllib.parse import urlencode

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from telephony import signatures_testing
from tests.conftest import make_desk_bot
from tests.ports import RTP_OFFSET, free_port

DATA = Path(__file__).resolve().parent.parent / "data"


@pytest.fixture(scope="session")
def loaded_models():
    """The process registry with Whisper, Piper and Silero loaded (once per session)."""
    from pipelines.model_registry import registry

    registry.preload()
    return registry


@pytest.fixture
def desk_bot(company_a):
    return make_desk_bot(company_a)


def audio(name: str) -> str:
    return str(DATA / name)


# --- Provider credentials the test runner verifies with; tests sign as each provider documents --

TWILIO_TOKEN = "secret"  # fake_twilio's account auth token too
PLIVO_TOKEN = "secret"
TELNYX_KEY = Ed25519PrivateKey.generate()
DAILY_SECRET = base64.b64encode(b"daily-webhook-secret").decode()


def signed_post(base: str, provider: str, path: str, form: dict | None = None, *, json_body: dict | None = None,
                headers: dict | None = None):
    """POST a webhook to the runner signed as ``provider`` signs it."""
    import json
    import time
    import uuid

    import httpx

    url = base + path
    extra = dict(headers or {})
    if json_body is not None:
        body, content_type = json.dumps(json_body).encode(), "application/json"
    else:
        body, content_type = urlencode(form or {}).encode(), "application/x-www-form-urlencoded"
    now = str(int(time.time()))
    if provider == "twilio":
        extra.setdefault("X-Twilio-Signature", signatures_testing.sign_twilio(url, form, TWILIO_TOKEN))
    elif provider == "plivo":
        nonce = uuid.uuid4().hex
        extra.setdefault("X-Plivo-Signature-V3-Nonce", nonce)
        extra.setdefault("X-Plivo-Signature-V3",
                         signatures_testing.sign_plivo_v3("POST", url, nonce, PLIVO_TOKEN, form or {}))
    elif provider == "telnyx":
        extra.setdefault("telnyx-timestamp", now)
        extra.setdefault("telnyx-signature-ed25519", signatures_testing.sign_telnyx(TELNYX_KEY, now, body))
    elif provider == "daily":
        extra.setdefault("X-Webhook-Timestamp", now)
        extra.setdefault("X-Webhook-Signature", signatures_testing.sign_daily(DAILY_SECRET, now, body))
    return httpx.post(url, content=body, headers={"content-type": content_type, **extra}, timeout=30)


def number_for(bot, provider: str, number: str):
    from voicebot.models import PhoneNumber

    return PhoneNumber.objects.create(company=bot.company, bot=bot, number=number, provider=provider)


# --- The runner on a free port, in this process (shares the loaded models) ------------

@pytest.fixture(scope="session")
def runner(llm_server, loaded_models):
    """``create_app()`` under uvicorn in a thread; yields (base http url, hub)."""
    import threading
    import time

    import httpx
    import uvicorn
    from django.conf import settings

    from pipelines.live.runner import CallHub, create_app
    from telephony.sip.agent import SipAgent, SipSettings

    hub = CallHub()
    port = free_port()
    # What providers are told to call, and what they sign (README, "Security").
    settings.RUNNER_PUBLIC_URL = f"http://127.0.0.1:{port}"
    settings.TWILIO_AUTH_TOKEN, settings.PLIVO_AUTH_TOKEN = TWILIO_TOKEN, PLIVO_TOKEN
    settings.TELNYX_PUBLIC_KEY = signatures_testing.telnyx_public_key_b64(TELNYX_KEY)
    settings.DAILY_WEBHOOK_SECRET = DAILY_SECRET
    # The SIP endpoint on a free port of loopback (one per process: PJSIP is a singleton).
    sip_port = free_port()
    sip = SipSettings(host="127.0.0.1", port=sip_port, rtp_port=sip_port + RTP_OFFSET)
    server = uvicorn.Server(uvicorn.Config(create_app(hub, preload=False, spool_replay_secs=0.5,
                                                      listeners=lambda h: [SipAgent(h, sip)]),
                                           host="127.0.0.1", port=port, log_level="warning", ws="websockets"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("runner did not start")
        time.sleep(0.1)
    yield base, hub
    server.should_exit = True
    thread.join(10)


@pytest.fixture(autouse=True)
def calls_settled(request):
    """After a test that used the runner, wait until its calls are stored: a call frees its line
    before storing, and a store racing the next test's database flush deadlocks with it."""
    yield
    if "runner" not in request.fixturenames:
        return
    import time

    _base, hub = request.getfixturevalue("runner")
    deadline = time.monotonic() + 30
    while hub.active and time.monotonic() < deadline:
        time.sleep(0.1)


class LocalFake:
    """A provider's REST API faked on a free loopback port, served from a thread."""

    def _serve(self, handler) -> None:
        import threading
        from http.server import ThreadingHTTPServer

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


class FakeTwilio(LocalFake):
    """Twilio's REST API at the HTTP boundary: records call updates (hang-up, transfer)."""

    def __init__(self):
        from http.server import BaseHTTPRequestHandler
        from urllib.parse import parse_qs

        self.requests: list[tuple[str, dict]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0))).decode()
                fake.requests.append((self.path, {k: v[0] for k, v in parse_qs(body).items()}))
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"status": "ok"}')

            def log_message(self, *args):
                pass

        self._serve(Handler)


@pytest.fixture
def fake_twilio(settings):
    fake = FakeTwilio()
    settings.TWILIO_API_BASE_URL = fake.url
    settings.TWILIO_ACCOUNT_SID = "ACtest"
    settings.TWILIO_AUTH_TOKEN = "secret"
    yield fake
    fake.close()


class FakeProviderAPI(LocalFake):
    """Telnyx's and Plivo's REST APIs at the HTTP boundary (their paths do not overlap).

    Records ``(method, path, Authorization header, JSON body or None)`` per request and
    answers as the provider does: Telnyx 200 ``{"data": {"result": "ok"}}``, Plivo 204 to
    a hang-up and 202 to a transfer; ``answer = (status, body)`` overrides (e.g. 404).
    """

    def __init__(self):
        import json
        from http.server import BaseHTTPRequestHandler

        self.requests: list[tuple[str, str, str, object]] = []
        self.answer: tuple[int, dict | None] | None = None
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self):
                raw = self.rfile.read(int(self.headers.get("content-length", 0)))
                fake.requests.append((self.command, self.path, self.headers.get("authorization", ""),
                                      json.loads(raw) if raw else None))
                if fake.answer is not None:
                    status, body = fake.answer
                elif self.path.startswith("/v2/calls/"):
                    status, body = 200, {"data": {"result": "ok"}}
                elif self.command == "DELETE":
                    status, body = 204, None
                else:
                    status, body = 202, {"message": "call transferred", "api_id": "fake"}
                self.send_response(status)
                data = json.dumps(body).encode() if body is not None else b""
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_POST = do_DELETE = _handle

            def log_message(self, *args):
                pass

        self._serve(Handler)


TELNYX_AUTH = "Bearer KEYtest"
PLIVO_AUTH = "Basic " + base64.b64encode(b"MAtest:secret").decode()


@pytest.fixture
def fake_providers(settings):
    fake = FakeProviderAPI()
    settings.TELNYX_API_BASE_URL = settings.PLIVO_API_BASE_URL = fake.url
    settings.TELNYX_API_KEY = "KEYtest"
    settings.PLIVO_AUTH_ID, settings.PLIVO_AUTH_TOKEN = "MAtest", "secret"
    yield fake
    fake.close()


@pytest.fixture
def desk_number(desk_bot):
    from voicebot.models import PhoneNumber

    return PhoneNumber.objects.create(company=desk_bot.company, bot=desk_bot, number="+4930555000")


def wait_for_call(external_id: str, timeout: float = 20.0):
    """The stored Call for a provider call id, once the runner has stored it."""
    import time

    from voicebot.models import Call

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        call = Call.objects.filter(external_id=external_id).first()
        if call is not None:
            return call
        time.sleep(0.2)
    raise AssertionError(f"no Call {external_id} stored within {timeout}s")


class LLMProxy:
    """A pass-through to the real LLM server that can be made to die (connections reset)."""

    def __init__(self, upstream: str):
        import socket
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        import httpx

        self.dead = False
        self.hung = False  # accept the request, then say nothing (a stuck server) until closed
        self.released = threading.Event()
        self.requests = 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                proxy.requests += 1
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                if proxy.dead:
                    self.connection.shutdown(socket.SHUT_RDWR)  # the LLM process is gone
                    return
                if proxy.hung:
                    proxy.released.wait(30)
                    return
                with httpx.stream("POST", upstream.rstrip("/") + self.path.removeprefix("/v1"), content=body,
                                  headers={"content-type": "application/json"}, timeout=30) as response:
                    self.send_response(response.status_code)
                    self.send_header("content-type", response.headers.get("content-type", "application/json"))
                    self.end_headers()
                    for chunk in response.iter_raw():
                        self.wfile.write(chunk)
                        self.wfile.flush()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.released.set()
        self.server.shutdown()


@pytest.fixture
def llm_proxy(llm_server, runner):
    proxy = LLMProxy(llm_server)
    _base, hub = runner
    hub.llm_base_url = proxy.url
    yield proxy
    hub.llm_base_url = None
    proxy.close()


# --- Calling out: Twilio's cloud faked at the HTTP boundary, callees with Piper voices ------

@pytest.fixture(scope="session")
def lines(loaded_models, tmp_path_factory):
    """The callee's recorded lines ("Hello, this is Sam speaking.", a voicemail greeting...), from Piper."""
    from pipelines.management.commands.fake_callees import callee_wavs

    return callee_wavs(tmp_path_factory.mktemp("callee-lines"))


@pytest.fixture
def cloud(runner, settings, monkeypatch):
    """Twilio's cloud, local (pipelines/live/fake_twilio.py); the dial task runs at once, in this
    process, as a worker would."""
    from pipelines.live.fake_twilio import FakeTwilioCloud
    from telephony.tasks import dial_call
    from voicebot import outbound_calls

    cloud = FakeTwilioCloud("ACtest", TWILIO_TOKEN)
    settings.TWILIO_API_BASE_URL = cloud.start()
    settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN = "ACtest", TWILIO_TOKEN
    monkeypatch.setattr(outbound_calls, "queue_dial", dial_call)
    yield cloud
    cloud.close()


@pytest.fixture
def caller_bot(desk_bot, desk_number):
    """The desk bot as a caller: its greeting names the callee."""
    desk_bot.greeting = "Hi {{name}}, this is the front desk calling about your visit."
    desk_bot.save()
    return desk_bot
