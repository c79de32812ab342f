"""A local fake of Twilio's cloud for outbound calls: the REST API that places a call, and the callee.

For tests and local trials (``manage.py fake_callees``). Point the platform at it with
``TWILIO_API_BASE_URL=cloud.url`` and the same ``TWILIO_ACCOUNT_SID``/``TWILIO_AUTH_TOKEN``.

What it does, as Twilio documents it:

- ``POST /2010-04-01/Accounts/{AccountSid}/Calls.json`` (HTTP Basic ``AccountSid:AuthToken``)
  places a call: 201 with the Call resource (``status`` queued). Errors as Twilio's JSON bodies:
  401 20003 (authentication, or another account's path), 400 21201 (no To), 21213 (no From),
  21205 (no Url/Twiml, or a Url that is not an absolute http(s) URL), 21626 (an unknown
  StatusCallbackEvent), 21200 (the Calls resource's catch-all: a bad Method, StatusCallback,
  Timeout).
- Per call, a task: status callbacks (only the ``StatusCallbackEvent``\\ s asked for; ``completed``
  alone when none is named) signed with ``X-Twilio-Signature``; on answer the ``Url`` is fetched
  (signed; ``Method`` POST or GET) with ``CallStatus=in-progress`` (and ``AnsweredBy`` when
  ``MachineDetection`` is on) and its TwiML run: ``<Connect><Stream>`` opens the Media Stream
  websocket (the ``<Parameter>``\\ s as ``customParameters``) and plays the callee's script;
  ``<Say>`` is recorded, ``<Pause>`` waits, ``<Hangup/>`` ends, ``<Dial>`` is recorded as a
  transfer, ``<Redirect>`` fetches the next document; the end of the document ends the call.
  A Url that fails (non-2xx, unreachable, not TwiML) is an application error: Twilio says
  "An application error has occurred" to the callee and hangs up; the call ends ``completed``
  (it was answered) and the error (11200, 11205, 12100) is recorded on the call.
- ``POST .../Calls/{CallSid}.json``: ``Status=completed`` hangs up (a call still queued or ringing
  ends ``canceled``), ``Status=canceled`` cancels a queued or ringing call (no effect on one in
  progress); ``Twiml``/``Url`` replace the running document (the stream gets ``stop``). 404 20404
  for an unknown sid; ``GET`` fetches the resource.

Callees are chosen by the To number (``cloud.callee(number, behaviour)``, else ``cloud.default``):
``Answers(script)``, ``Busy()``, ``NoAnswer()``, ``Fails()``, ``Voicemail(greeting_wav)``.
Results: ``cloud.calls[sid]`` (a ``FakeCall``), ``cloud.wait(sid)``, ``cloud.requests``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
import math
import re
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from urllib.parse import parse_qsl, urlencode, urlsplit
from xml.etree import ElementTree

import httpx
import numpy as np
import websockets

from pipelines.live.twilio_caller import TwilioCaller

API_VERSION = "2010-04-01"
EVENTS = ("initiated", "ringing", "answered", "completed")
FINAL_STATUSES = ("completed", "busy", "no-answer", "failed", "canceled")
APPLICATION_ERROR = "An application error has occurred. Goodbye."
SIP_CODES = {"completed": 200, "busy": 486, "no-answer": 487, "canceled": 487, "failed": 404}
WEBHOOK_TIMEOUT_SECS = 15.0  # Twilio's default for the Url and status callbacks
USER_AGENT = "TwilioProxy/1.1"

log = logging.getLogger(__name__)


# --- The callee's script ---------------------------------------------------------------------

@dataclass(frozen=True)
class Say:
    """Play a WAV (16-bit, any rate) at once, in real time; its speech end is recorded."""
    wav: str


@dataclass(frozen=True)
class WaitBot:
    """Send silence until the bot has spoken (since the last Say, or the stream's start) and its
    audio has played out plus ``gap`` seconds; at most ``timeout`` seconds."""
    gap: float = 0.8
    timeout: float = 45.0


@dataclass(frozen=True)
class Silence:
    secs: float


@dataclass(frozen=True)
class Keys:
    """Twilio ``dtmf`` events, one per digit, ``gap`` seconds apart (silence in between)."""
    digits: str
    gap: float = 0.1


@dataclass(frozen=True)
class HangUp:
    """The callee hangs up: the stream gets ``stop`` and closes; the call ends completed."""


# --- Callees ---------------------------------------------------------------------------------

@dataclass
class Answers:
    """Rings ``ring_secs`` (no-answer if that reaches the call's Timeout), answers, plays ``script``;
    a script without HangUp then waits for the platform to hang up, at most ``wait_cap_secs``."""
    script: list = field(default_factory=list)
    ring_secs: float = 0.3
    wait_cap_secs: float = 60.0


@dataclass
class Busy:
    ring_secs: float = 0.2


@dataclass
class NoAnswer:
    """Rings min(Timeout, ``ring_secs``), then the call ends no-answer."""
    ring_secs: float = 1.0


@dataclass
class Fails:
    """The call cannot be connected: initiated, then failed."""


@dataclass
class Voicemail:
    """Answers after ``ring_secs``, plays the greeting, then (``beep``) a 1 kHz beep of 0.5 s, then
    records: sends silence until the platform hangs up or ``record_secs`` pass (then hangs up).

    With ``MachineDetection=DetectMessageEnd`` Twilio fetches the Url only after the greeting and
    beep (``AnsweredBy=machine_end_beep``): the stream then carries the recording's silence alone.
    """
    greeting_wav: str
    beep: bool = True
    ring_secs: float = 0.3
    record_secs: float = 30.0


BEEP_SECS = 0.5


def beep_pcm8(secs: float = BEEP_SECS, hz: float = 1000.0) -> bytes:
    t = np.arange(int(secs * 8000)) / 8000
    return (np.sin(2 * np.pi * hz * t) * 8000).astype(np.int16).tobytes()


# --- What happened ---------------------------------------------------------------------------

@dataclass
class Callback:
    """One status callback sent: what it said and what the platform answered."""
    event: str  # initiated | ringing | answered | completed
    status: str  # the CallStatus sent
    url: str
    method: str
    params: dict
    http_status: int | None = None  # None: no answer (connection error or timeout; see error)
    error: str | None = None


@dataclass
class Webhook:
    """One fetch of the call's Url (or a Redirect): the params sent and the platform's answer."""
    url: str
    method: str
    params: dict
    http_status: int | None = None
    body: str = ""
    error: str | None = None


@dataclass
class FakeCall:
    sid: str
    account_sid: str
    to: str
    from_: str
    params: dict  # the create request's form (repeated keys as lists)
    behaviour: object
    status: str = "queued"  # the REST resource's status
    answered_by: str | None = None
    created_at: float = field(default_factory=time.monotonic)
    date_created: datetime = field(default_factory=lambda: datetime.now(UTC))
    start_time: datetime | None = None
    end_time: datetime | None = None
    answered_at: float | None = None  # monotonic, as TwilioCaller's timings
    stream_started_at: float | None = None
    ended_at: float | None = None
    callbacks: list[Callback] = field(default_factory=list)
    webhooks: list[Webhook] = field(default_factory=list)
    said: list[str] = field(default_factory=list)  # <Say> texts (and Twilio's application-error words)
    transfers: list[str] = field(default_factory=list)  # <Dial> targets
    unsupported: list[str] = field(default_factory=list)  # TwiML verbs the fake does not run
    error: dict | None = None  # {"code": 11200, "message": ...} on an application or stream error
    stream: CalleeStream | None = None
    stream_url: str | None = None
    stream_parameters: dict = field(default_factory=dict)
    greeting_before_stream: bool = False  # a Voicemail greeting played before the Url was fetched
    beep_ended_at: float | None = None  # monotonic: when a Voicemail's beep had been sent (played out)
    outcome: str | None = None
    done: threading.Event = field(default_factory=threading.Event)
    _seq: int = 0
    _end_request: str | None = None
    _ended: asyncio.Event | None = None
    _end_wanted: asyncio.Event | None = None
    _task: asyncio.Task | None = None
    _progress: asyncio.Task | None = None
    _program: asyncio.Task | None = None
    _pending_twiml: tuple | None = None
    _callbacks: asyncio.Queue | None = None

    @property
    def duration(self) -> int:
        """Seconds from answer to end (0 when never answered), as Twilio's CallDuration."""
        if self.answered_at is None:
            return 0
        return round((self.ended_at or time.monotonic()) - self.answered_at)

    @property
    def caller(self) -> CalleeStream | None:
        """The callee's TwilioCaller (the same object as ``stream``)."""
        return self.stream

    @property
    def answer_twiml(self) -> str | None:
        """The body the platform answered the first Url fetch with."""
        return self.webhooks[0].body if self.webhooks else None

    @property
    def callback_statuses(self) -> list[str]:
        return [c.status for c in self.callbacks]

    @property
    def say_ends(self) -> list[float]:
        """Monotonic end of each Say's speech (TwilioCaller.speech_ends)."""
        return list(self.stream.speech_ends) if self.stream else []

    @property
    def bot_audio(self) -> bytes:
        """The bot's audio over the stream, 8 kHz PCM16."""
        return bytes(self.stream.bot_audio) if self.stream else b""

    @property
    def first_bot_audio(self) -> float | None:
        """Monotonic time of the first non-silent bot audio after the stream started."""
        if not self.stream or self.stream_started_at is None:
            return None
        return self.stream.first_bot_audio_after(self.stream_started_at)

    def resource(self) -> dict:
        """The Call resource, as Twilio's REST API returns it."""
        uri = f"/{API_VERSION}/Accounts/{self.account_sid}/Calls/{self.sid}"
        fmt = (lambda d: format_datetime(d) if d else None)
        ended = self.status in FINAL_STATUSES
        return {
            "account_sid": self.account_sid, "annotation": None, "answered_by": self.answered_by,
            "api_version": API_VERSION, "caller_name": None, "date_created": fmt(self.date_created),
            "date_updated": fmt(self.end_time or self.start_time or self.date_created),
            "direction": "outbound-api", "duration": str(self.duration) if ended else None,
            "end_time": fmt(self.end_time), "forwarded_from": None, "from": self.from_, "from_formatted": self.from_,
            "group_sid": None, "parent_call_sid": None, "phone_number_sid": None, "price": None, "price_unit": "USD",
            "queue_time": "0", "sid": self.sid, "start_time": fmt(self.start_time), "status": self.status,
            "subresource_uris": {name: f"{uri}/{name.title().replace('_', '')}.json" for name in
                                 ("notifications", "recordings", "payments", "events", "siprec", "streams")},
            "to": self.to, "to_formatted": self.to, "trunk_sid": None, "uri": f"{uri}.json",
        }


# --- The callee's side of the Media Stream ---------------------------------------------------

class CalleeStream(TwilioCaller):
    """TwilioCaller as Twilio's cloud speaks it for an outbound call: the account's sid in ``start``
    and ``stop``, sequence numbers, chunks and timestamps on media, ``dtmf`` events, and marks
    echoed back once the bot audio sent before them has played (at once on ``clear``)."""

    def __init__(self, url: str, *, account_sid: str, **kwargs):
        super().__init__(url, **kwargs)
        self.account_sid = account_sid
        self.sequence = 0
        self.chunk = 0
        self.dtmf_sent: list[str] = []
        self.marks_echoed: list[str] = []
        self._pending_marks: dict[asyncio.Task, str] = {}

    def _next(self) -> str:
        self.sequence += 1
        return str(self.sequence)

    def start_messages(self) -> list[dict]:
        return [{"event": "connected", "protocol": "Call", "version": "1.0.0"}, {
            "event": "start", "sequenceNumber": self._next(), "streamSid": self.stream_sid,
            "start": {"accountSid": self.account_sid, "streamSid": self.stream_sid, "callSid": self.call_sid,
                      "tracks": ["inbound"], "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000,
                                                             "channels": 1},
                      "customParameters": self.parameters},
        }]

    def media_message(self, pcm8: bytes) -> dict:
        message = super().media_message(pcm8)
        self.chunk += 1
        message["sequenceNumber"] = self._next()
        message["media"].update(chunk=str(self.chunk), timestamp=str((self.chunk - 1) * 20))
        return message

    def bot_pcm(self, message: dict) -> bytes | None:
        # Every message from the platform passes here (TwilioCaller's protocol hook): marks too.
        event = message.get("event")
        if event == "mark":
            name = (message.get("mark") or {}).get("name", "")
            delay = max(0.0, self.play_until - time.monotonic())
            task = asyncio.get_running_loop().create_task(self._echo_mark(name, delay))
            self._pending_marks[task] = name
        elif event == "clear":
            for task, name in list(self._pending_marks.items()):
                task.cancel()
                self._pending_marks.pop(task, None)
                asyncio.get_running_loop().create_task(self._echo_mark(name, 0.0))
        return super().bot_pcm(message)

    async def _echo_mark(self, name: str, delay: float):
        try:
            await asyncio.sleep(delay)
            await self.ws.send(json.dumps({"event": "mark", "sequenceNumber": self._next(),
                                           "streamSid": self.stream_sid, "mark": {"name": name}}))
            self.marks_echoed.append(name)
        except (websockets.ConnectionClosed, asyncio.CancelledError):
            pass
        finally:
            self._pending_marks.pop(asyncio.current_task(), None)

    async def send_dtmf(self, digit: str) -> bool:
        """One key as Twilio's ``dtmf`` event; False when the stream is already closed."""
        try:
            await self.ws.send(json.dumps({"event": "dtmf", "streamSid": self.stream_sid,
                                           "sequenceNumber": self._next(),
                                           "dtmf": {"track": "inbound_track", "digit": digit}}))
        except websockets.ConnectionClosed:
            return False
        self.dtmf_sent.append(digit)
        return True

    async def _send_pcm8(self, pcm8: bytes, clock: list[float]):
        await super()._send_pcm8(pcm8, clock)
        # A send to a closed socket returns at once: let the reader see the close (no busy loop).
        await asyncio.sleep(0)

    async def play_pcm8(self, pcm8: bytes):
        await self._send_pcm8(pcm8, [time.monotonic()])

    async def hold(self, secs: float) -> bool:
        """Send silence until the platform closes the stream (True) or ``secs`` pass (False)."""
        deadline = time.monotonic() + secs
        clock = [time.monotonic()]
        while not self.closed_by_server.is_set() and time.monotonic() < deadline:
            await self._send_pcm8(bytes(320), clock)
        return self.closed_by_server.is_set()

    async def hang_up(self):
        """Twilio's ``stop`` (the call or the stream ended), then the websocket closes."""
        if self.ws is not None and not self.closed_by_server.is_set():
            try:
                await self.ws.send(json.dumps({"event": "stop", "sequenceNumber": self._next(),
                                               "streamSid": self.stream_sid,
                                               "stop": {"accountSid": self.account_sid, "callSid": self.call_sid}}))
                await self.ws.close()
            except websockets.ConnectionClosed:
                pass
        for task in list(self._pending_marks):
            task.cancel()
        if self._reader:
            try:
                await asyncio.wait_for(self._reader, 5)
            except TimeoutError:
                self._reader.cancel()


# --- The cloud -------------------------------------------------------------------------------

def _twilio_error(status: int, code: int, message: str, headers: dict | None = None):
    from starlette.responses import JSONResponse

    return JSONResponse({"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}",
                         "status": status}, status_code=status, headers=headers)


def _form(pairs: list[tuple[str, str]]) -> dict:
    """Form pairs as a dict: one value as a string, a repeated key as a list."""
    form: dict = {}
    for key, value in pairs:
        if key in form:
            form[key] = (form[key] if isinstance(form[key], list) else [form[key]]) + [value]
        else:
            form[key] = value
    return form


def _values(form: dict, key: str) -> list[str]:
    value = form.get(key)
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _absolute_http(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def _rfc2822_now() -> str:
    return format_datetime(datetime.now(UTC))


class FakeTwilioCloud:
    """Twilio's REST API and its callees, served from a background thread with its own event loop."""

    def __init__(self, account_sid: str, auth_token: str, *, on_event=None):
        from twilio.request_validator import RequestValidator

        if not account_sid or not auth_token:
            raise ValueError("FakeTwilioCloud needs the account sid and auth token the platform uses")
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.validator = RequestValidator(auth_token)
        self.on_event = on_event  # on_event(call, what): called on the cloud's thread for each call event
        self.callees: dict[str, object] = {}
        self.default: object = Answers()
        self.calls: dict[str, FakeCall] = {}
        self.requests: list[tuple[str, dict]] = []  # every REST request: (path, form or query dict)
        self.url: str | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._server = None
        self._thread: threading.Thread | None = None
        self._client: httpx.AsyncClient | None = None

    # -- set-up --

    def callee(self, number: str, behaviour) -> None:
        """How calls to ``number`` go: one behaviour, or a list of them, one per call (the last repeats)."""
        self.callees[number] = list(behaviour) if isinstance(behaviour, (list, tuple)) else behaviour

    def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        import uvicorn

        self._server = uvicorn.Server(uvicorn.Config(self.app(), host=host, port=port, log_level="warning",
                                                     lifespan="on"))
        self.loop = asyncio.new_event_loop()

        def serve():
            asyncio.set_event_loop(self.loop)
            self.loop.run_until_complete(self._server.serve())

        self._thread = threading.Thread(target=serve, name="fake-twilio", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the fake Twilio cloud did not start on {host}:{port}")
            time.sleep(0.02)
        bound = self._server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://{host}:{bound}"
        return self.url

    def close(self) -> None:
        """Hang up the calls still live (as the platform's REST hang-up would), then stop serving."""
        if self.loop is None or self._thread is None:
            return
        if self._thread.is_alive():
            try:
                asyncio.run_coroutine_threadsafe(self._end_all(), self.loop).result(20)
            except Exception:  # closing must not fail a test's teardown
                log.exception("fake Twilio: ending the live calls failed")
            self._server.should_exit = True
            self._thread.join(10)
        self.loop = None

    def __enter__(self):
        if self.url is None:
            self.start()
        return self

    def __exit__(self, *exc):
        self.close()

    # -- results (from any thread) --

    def wait(self, sid: str, timeout: float = 60.0) -> FakeCall:
        """Block until the call is done (final status, last callback answered); the FakeCall."""
        call = self.calls[sid]
        if not call.done.wait(timeout):
            raise TimeoutError(f"call {sid} to {call.to} was not done after {timeout:.0f} s (status {call.status})")
        return call

    def wait_for_call(self, to: str | None = None, timeout: float = 30.0) -> FakeCall:
        """The first call placed (to ``to``, if given), once it exists."""
        deadline = time.monotonic() + timeout
        while True:
            for call in list(self.calls.values()):
                if to is None or call.to == to:
                    return call
            if time.monotonic() > deadline:
                raise TimeoutError(f"no call to {to or 'any number'} was placed within {timeout:.0f} s")
            time.sleep(0.02)

    # -- the HTTP app --

    def app(self):
        from starlette.applications import Starlette
        from starlette.routing import Route

        @contextlib.asynccontextmanager
        async def lifespan(app):
            self._client = httpx.AsyncClient(timeout=WEBHOOK_TIMEOUT_SECS, trust_env=False, follow_redirects=False,
                                             headers={"User-Agent": USER_AGENT})
            try:
                yield
            finally:
                await self._client.aclose()

        base = f"/{API_VERSION}/Accounts/{{account_sid}}"
        return Starlette(routes=[
            Route(base + "/Calls.json", self._create, methods=["POST"]),
            Route(base + "/Calls/{call_sid}.json", self._call_resource, methods=["GET", "POST"]),
            Route("/{path:path}", self._not_found, methods=["GET", "POST", "PUT", "DELETE"]),
        ], lifespan=lifespan)

    async def _record(self, request) -> dict:
        pairs = parse_qsl(request.url.query, keep_blank_values=True)
        if request.method == "POST":
            pairs = parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True)
        form = _form(pairs)
        self.requests.append((request.url.path, form))
        return form

    def _authenticated(self, request) -> bool:
        header = request.headers.get("authorization", "")
        if not header.lower().startswith("basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:].strip()).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return (secrets.compare_digest(user.encode(), self.account_sid.encode())
                and secrets.compare_digest(password.encode(), self.auth_token.encode())
                and request.path_params.get("account_sid") == self.account_sid)

    def _auth_error(self):
        return _twilio_error(401, 20003, "Authenticate", {"WWW-Authenticate": 'Basic realm="Twilio API"'})

    async def _not_found(self, request):
        await self._record(request)
        return _twilio_error(404, 20404, f"The requested resource {request.url.path} was not found")

    async def _create(self, request):
        from starlette.responses import JSONResponse

        form = await self._record(request)
        if not self._authenticated(request):
            return self._auth_error()
        first = {k: (v[0] if isinstance(v, list) else v) for k, v in form.items()}
        if not first.get("To"):
            return _twilio_error(400, 21201, "No 'To' number is specified")
        if not first.get("From"):
            return _twilio_error(400, 21213, "No 'From' number is specified")
        if not first.get("Url") and not first.get("Twiml"):
            return _twilio_error(400, 21205, "Url parameter is required (or Twiml)")
        if first.get("Url") and not _absolute_http(first["Url"]):
            return _twilio_error(400, 21205, f"Url is not a valid URL: {first['Url']}")
        if first.get("StatusCallback") and not _absolute_http(first["StatusCallback"]):
            return _twilio_error(400, 21200, f"StatusCallback is not a valid URL: {first['StatusCallback']}")
        for name in ("Method", "StatusCallbackMethod"):
            if first.get(name) and first[name].upper() not in ("GET", "POST"):
                return _twilio_error(400, 21200, f"{name} must be GET or POST (got {first[name]})")
        for name in ("Timeout", "TimeLimit"):
            if first.get(name) and not re.fullmatch(r"\d+", first[name]):
                return _twilio_error(400, 21200, f"{name} must be a whole number of seconds (got {first[name]})")
        events = [e for v in _values(form, "StatusCallbackEvent") for e in v.split()]
        if any(e.lower() not in EVENTS for e in events):
            return _twilio_error(400, 21626, f"Invalid 'StatusCallbackEvent': {' '.join(events)} "
                                             f"(one or more of {', '.join(EVENTS)})")
        behaviour = self.callees.get(first["To"], self.default)
        if isinstance(behaviour, list):  # one behaviour per call to this number; the last one repeats
            behaviour = behaviour.pop(0) if len(behaviour) > 1 else behaviour[0]
        call = FakeCall(sid=f"CA{uuid.uuid4().hex}", account_sid=self.account_sid, to=first["To"],
                        from_=first["From"], params=form, behaviour=behaviour)
        call._ended, call._end_wanted = asyncio.Event(), asyncio.Event()
        call._callbacks = asyncio.Queue()
        self.calls[call.sid] = call
        self._event(call, "queued")
        call._task = asyncio.get_running_loop().create_task(self._run(call))
        return JSONResponse(call.resource(), status_code=201)

    async def _call_resource(self, request):
        from starlette.responses import JSONResponse

        form = await self._record(request)
        if not self._authenticated(request):
            return self._auth_error()
        call = self.calls.get(request.path_params["call_sid"])
        if call is None:
            return _twilio_error(404, 20404, f"The requested resource {request.url.path} was not found")
        if request.method == "GET":
            return JSONResponse(call.resource())
        first = {k: (v[0] if isinstance(v, list) else v) for k, v in form.items()}
        status = first.get("Status", "").lower()
        if status and status not in ("completed", "canceled"):
            return _twilio_error(400, 21200, f"Status must be completed or canceled (got {first['Status']})")
        if first.get("Twiml") or first.get("Url"):
            if call.status != "in-progress":
                return _twilio_error(400, 21220, "Call is not in-progress. Cannot redirect.")
            if first.get("Url") and not _absolute_http(first["Url"]):
                return _twilio_error(400, 21205, f"Url is not a valid URL: {first['Url']}")
            self._redirect(call, first)
        elif status and call.status not in FINAL_STATUSES and (
                status == "completed" or call.status in ("queued", "ringing")):
            # canceled touches only a queued or ringing call; completed hangs up any live one.
            call._end_request = "platform-hung-up" if call.status == "in-progress" else "canceled"
            call._end_wanted.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(call._ended.wait(), 10)
        return JSONResponse(call.resource())

    # -- a call's life --

    def _event(self, call: FakeCall, what: str) -> None:
        if self.on_event:
            try:
                self.on_event(call, what)
            except Exception:  # a printing hook must not break a call
                log.exception("fake Twilio: on_event failed")

    def _wanted_events(self, call: FakeCall) -> set[str]:
        if not call.params.get("StatusCallback"):
            return set()
        named = {e.lower() for v in _values(call.params, "StatusCallbackEvent") for e in v.split()}
        return (named & set(EVENTS)) if named else {"completed"}

    def _first(self, call: FakeCall, key: str, default: str = "") -> str:
        values = _values(call.params, key)
        return values[0] if values else default

    def _call_params(self, call: FakeCall, status: str) -> dict:
        params = {"AccountSid": call.account_sid, "ApiVersion": API_VERSION, "CallSid": call.sid,
                  "CallStatus": status, "Called": call.to, "Caller": call.from_, "Direction": "outbound-api",
                  "From": call.from_, "To": call.to}
        if call.answered_by:
            params["AnsweredBy"] = call.answered_by
        return params

    def _status(self, call: FakeCall, event: str, status: str) -> None:
        """A call progress event: the REST status moves; a status callback is queued if asked for."""
        if status != "initiated":
            call.status = status
        self._event(call, status)
        if event not in self._wanted_events(call):
            return
        params = self._call_params(call, status)
        params.update(CallbackSource="call-progress-events", SequenceNumber=str(call._seq), Timestamp=_rfc2822_now())
        call._seq += 1
        if event == "completed":
            params.update(CallDuration=str(call.duration), Duration=str(math.ceil(call.duration / 60)),
                          SipResponseCode=str(SIP_CODES.get(status, 200)))
        call._callbacks.put_nowait((event, status, params))

    async def _send_callbacks(self, call: FakeCall):
        while True:
            item = await call._callbacks.get()
            if item is None:
                return
            event, status, params = item
            url = self._first(call, "StatusCallback")
            method = self._first(call, "StatusCallbackMethod", "POST").upper()
            record = Callback(event=event, status=status, url=url, method=method, params=params)
            call.callbacks.append(record)
            response, record.error = await self._signed(url, method, params)
            if response is not None:
                record.http_status = response.status_code
            self._event(call, f"status callback {status} -> {record.http_status or record.error}")

    async def _signed(self, url: str, method: str, params: dict):
        """One request as Twilio sends it, signed; (response or None, error or None)."""
        try:
            if method == "GET":
                full = url + ("&" if urlsplit(url).query else "?") + urlencode(params)
                headers = {"X-Twilio-Signature": self.validator.compute_signature(full, {})}
                return await self._client.get(full, headers=headers), None
            headers = {"X-Twilio-Signature": self.validator.compute_signature(url, params),
                       "Content-Type": "application/x-www-form-urlencoded; charset=UTF-8"}
            return await self._client.post(url, content=urlencode(params), headers=headers), None
        except httpx.HTTPError as exc:
            return None, f"{type(exc).__name__}: {exc}"

    async def _run(self, call: FakeCall):
        sender = asyncio.get_running_loop().create_task(self._send_callbacks(call))
        call._progress = asyncio.get_running_loop().create_task(self._progress_of(call))
        wanted = asyncio.get_running_loop().create_task(call._end_wanted.wait())
        final, outcome = "failed", "fake-error"
        try:
            await asyncio.wait({call._progress, wanted}, return_when=asyncio.FIRST_COMPLETED)
            if not call._progress.done():
                call._progress.cancel()
            try:
                final, outcome = await call._progress
            except asyncio.CancelledError:
                outcome = call._end_request or "canceled"
                final = "canceled" if outcome == "canceled" else "completed"
            except Exception as exc:  # noqa: BLE001 - recorded on the call, the call still ends
                call.error = {"code": None, "message": f"fake Twilio error: {type(exc).__name__}: {exc}"}
        finally:
            wanted.cancel()
            call.ended_at = time.monotonic()
            call.end_time = datetime.now(UTC)
            call.outcome = outcome
            self._status(call, "completed", final)
            call._ended.set()
            call._callbacks.put_nowait(None)
            await sender
            self._event(call, f"done: {final} ({outcome})")
            call.done.set()

    async def _progress_of(self, call: FakeCall) -> tuple[str, str]:
        """Dial the callee: (final status, outcome)."""
        behaviour = call.behaviour
        timeout = int(self._first(call, "Timeout", "60") or 60)
        await asyncio.sleep(0.05)  # out of the queue
        self._status(call, "initiated", "initiated")
        if isinstance(behaviour, Fails):
            return "failed", "failed"
        await asyncio.sleep(0.05)
        self._status(call, "ringing", "ringing")
        ring = getattr(behaviour, "ring_secs", 0.0)
        if isinstance(behaviour, Busy):
            await asyncio.sleep(ring)
            return "busy", "busy"
        if isinstance(behaviour, NoAnswer) or ring >= timeout:
            await asyncio.sleep(min(timeout, ring))
            return "no-answer", "no-answer"
        await asyncio.sleep(ring)

        call.answered_at = time.monotonic()
        call.start_time = datetime.now(UTC)
        detection = self._first(call, "MachineDetection")
        machine = isinstance(behaviour, Voicemail)
        if detection:
            if detection == "DetectMessageEnd" and machine:
                call.answered_by = "machine_end_beep" if behaviour.beep else "machine_end_silence"
            else:
                call.answered_by = "machine_start" if machine else "human"
        self._status(call, "answered", "in-progress")
        extra = {}
        if detection == "DetectMessageEnd" and machine:
            # Twilio waits for the end of the greeting (and its beep) before it fetches the Url.
            from pipelines.live.sim_transport import read_wav_16k

            await asyncio.sleep(len(read_wav_16k(behaviour.greeting_wav)) / 16000 + (BEEP_SECS if behaviour.beep else 0))
            call.greeting_before_stream = True
        if detection:
            extra["MachineDetectionDuration"] = str(int((time.monotonic() - call.answered_at) * 1000))

        limit = int(self._first(call, "TimeLimit", "14400") or 14400)
        inline = self._first(call, "Twiml")
        try:
            async with asyncio.timeout(limit):
                if inline:
                    outcome = await self._execute(call, inline)
                else:
                    outcome = await self._fetch_and_execute(call, self._first(call, "Url"),
                                                            self._first(call, "Method", "POST").upper(), extra)
                while call._pending_twiml is not None:  # a REST redirect replaced the document
                    outcome = await self._program_run(call, None)
        except TimeoutError:
            outcome = "time-limit"
        return "completed", outcome

    async def _fetch(self, call: FakeCall, url: str, method: str, extra: dict | None = None) -> str | None:
        params = self._call_params(call, call.status)
        params.update(extra or {})
        record = Webhook(url=url, method=method, params=params)
        call.webhooks.append(record)
        response, error = await self._signed(url, method, params)
        failure = None
        if response is None:
            record.error = error
            failure = {"code": 11205, "message": f"HTTP connection failure: {error}"}
        else:
            record.http_status, record.body = response.status_code, response.text
            if not 200 <= response.status_code < 300:
                failure = {"code": 11200, "message": f"HTTP retrieval failure: {url} answered {response.status_code}"}
        self._event(call, f"webhook {method} {url} -> {record.http_status or record.error}")
        if failure:
            call.error = failure
            return None
        return record.body

    async def _fetch_and_execute(self, call: FakeCall, url: str, method: str, extra: dict | None = None) -> str:
        twiml = await self._fetch(call, url, method, extra)
        if twiml is None:
            return self._application_error(call)
        return await self._program_run(call, twiml)

    async def _program_run(self, call: FakeCall, twiml: str | None) -> str:
        """Run a document as the call's program (a REST update cancels it and sets the next)."""
        if twiml is None:
            source = call._pending_twiml
            call._pending_twiml = None
            if source[0] == "twiml":
                twiml = source[1]
            else:
                twiml = await self._fetch(call, source[1], source[2])
                if twiml is None:
                    return self._application_error(call)
        call._program = asyncio.get_running_loop().create_task(self._execute(call, twiml))
        try:
            return await call._program
        except asyncio.CancelledError:
            if call._pending_twiml is not None and not asyncio.current_task().cancelling():
                return "redirected"
            raise

    def _redirect(self, call: FakeCall, first: dict) -> None:
        if first.get("Twiml"):
            call._pending_twiml = ("twiml", first["Twiml"])
        else:
            call._pending_twiml = ("url", first["Url"], first.get("Method", "POST").upper())
        self._event(call, "redirected by REST")
        if call._program is not None and not call._program.done():
            call._program.cancel()

    def _application_error(self, call: FakeCall) -> str:
        call.said.append(APPLICATION_ERROR)
        self._event(call, f"application error {call.error}")
        return "application-error"

    async def _execute(self, call: FakeCall, twiml: str) -> str:
        try:
            root = ElementTree.fromstring(twiml.strip())
        except ElementTree.ParseError as exc:
            call.error = {"code": 12100, "message": f"Document parse failure: {exc}"}
            return self._application_error(call)
        if root.tag != "Response":
            call.error = {"code": 12100, "message": f"Document parse failure: the root is <{root.tag}>, not <Response>"}
            return self._application_error(call)
        outcome = "twiml-ended"
        for verb in root:
            if verb.tag == "Say":
                call.said.append((verb.text or "").strip())
                self._event(call, f"say {call.said[-1]!r}")
            elif verb.tag == "Pause":
                await asyncio.sleep(float(verb.get("length", "1")))
            elif verb.tag in ("Hangup", "Reject"):
                return "hung-up-by-twiml"
            elif verb.tag == "Dial":
                target = (verb.text or "").strip() or " ".join(
                    (child.text or "").strip() for child in verb if child.tag in ("Number", "Sip", "Client"))
                call.transfers.append(target)
                self._event(call, f"transfer to {target}")
                return "transferred"
            elif verb.tag == "Redirect":
                url = (verb.text or "").strip()
                return await self._fetch_and_execute(call, url, verb.get("method", "POST").upper())
            elif verb.tag == "Connect" and verb.find("Stream") is not None:
                outcome = await self._stream(call, verb.find("Stream"))
                if outcome != "stream-closed":
                    return outcome
            else:
                call.unsupported.append(verb.tag)
        return outcome

    async def _stream(self, call: FakeCall, stream) -> str:
        """The callee on a Media Stream; 'stream-closed' when the platform closed it (the document
        goes on), else how the callee ended the call."""
        url = stream.get("url", "")
        params = {p.get("name"): p.get("value") for p in stream.findall("Parameter")}
        caller = CalleeStream(url, account_sid=call.account_sid, to=call.to, from_=call.from_, call_sid=call.sid,
                              parameters=params)
        call.stream, call.stream_url, call.stream_parameters = caller, url, params
        try:
            try:
                await caller.connect()
            except (OSError, websockets.WebSocketException) as exc:
                call.error = {"code": 31920, "message": f"Stream - WebSocket - Handshake Error: {exc}"}
                self._event(call, f"stream failed {url}: {exc}")
                return "stream-failed"
            call.stream_started_at = time.monotonic()
            self._event(call, f"stream started {url}")
            if isinstance(call.behaviour, Voicemail):
                return await self._voicemail(call, caller)
            return await self._script(call, caller)
        finally:
            await asyncio.shield(caller.hang_up())

    async def _script(self, call: FakeCall, caller: CalleeStream) -> str:
        behaviour = call.behaviour
        script = behaviour.script if isinstance(behaviour, Answers) else []
        last = call.stream_started_at
        for step in script:
            if caller.closed_by_server.is_set():
                return "stream-closed"
            if isinstance(step, Say):
                last = await caller.say(step.wav)
                self._event(call, f"callee said {step.wav.rsplit('/', 1)[-1]}")
            elif isinstance(step, WaitBot):
                await caller.wait_bot_done(since=last, gap=step.gap, timeout=step.timeout)
            elif isinstance(step, Silence):
                await caller.silence(step.secs)
            elif isinstance(step, Keys):
                for digit in step.digits:
                    if not await caller.send_dtmf(digit):
                        return "stream-closed"
                    await caller.silence(step.gap)
                self._event(call, f"callee pressed {step.digits}")
            elif isinstance(step, HangUp):
                return "callee-hung-up"
            else:
                raise TypeError(f"not a callee script step: {step!r}")
        cap = behaviour.wait_cap_secs if isinstance(behaviour, Answers) else 60.0
        return "stream-closed" if await caller.hold(cap) else "callee-hung-up"

    async def _voicemail(self, call: FakeCall, caller: CalleeStream) -> str:
        behaviour = call.behaviour
        if not call.greeting_before_stream:
            await caller.say(behaviour.greeting_wav, after_speech_silence=False)
            if behaviour.beep:
                await caller.play_pcm8(beep_pcm8())
                call.beep_ended_at = time.monotonic()
            self._event(call, "voicemail greeting and beep played")
        return "stream-closed" if await caller.hold(behaviour.record_secs) else "callee-hung-up"

    async def _end_all(self):
        for call in list(self.calls.values()):
            if call.status not in FINAL_STATUSES and call._end_wanted is not None:
                call._end_request = "platform-hung-up" if call.status == "in-progress" else "canceled"
                call._end_wanted.set()
        tasks = [c._task for c in self.calls.values() if c._task is not None and not c._task.done()]
        if tasks:
            await asyncio.wait(tasks, timeout=15)
