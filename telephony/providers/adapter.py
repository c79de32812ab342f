"""What a provider adapter gives the call runner; one adapter per provider, listed in ``ADAPTERS``.

Three kinds of entry point, each served by one handler of the runner:

- ``StreamAdapter`` (``STREAM``): a signed voice webhook answered with a document that
  connects a media websocket carrying a single-use stream token (Twilio, Telnyx, Plivo),
  or, for a provider that signs nothing, a stream URL holding the number's secret (Exotel);
- ``RoomAdapter`` (``ROOM``): a signed webhook after which the bot joins a room the
  provider bridges the caller into (Daily SIP dial-in);
- ``BrowserAdapter`` (``BROWSER``): a call page and a WebRTC offer, let in by a staff
  user's single-use test-call link.

Adapters return data (a ``CallStart``, documents, a transport, a ``CallControl``); what
needs the pipeline (the bot, the line, speaking an apology) is the runner's. ``name`` is
the provider as ``CallStart.provider``, ``PhoneNumber.provider`` and ``Call.transport``
spell it. ``routes``: extra Starlette routes the provider needs, mounted as they are.
"""

from __future__ import annotations

from urllib.parse import urlencode

from telephony import signatures
from telephony.base import CallControl, CallStart
from telephony.providers import streams
from telephony.stream_tokens import TokenBook

STREAM, ROOM, BROWSER = "stream", "room", "browser"


class BadCallStart(ValueError):
    """A verified webhook that names no call (a required field is missing); the message says which."""


class Adapter:
    name: str = ""
    kind: str = ""
    routes: tuple = ()
    connected_event: str | None = None  # the transport event after which the caller hears the greeting
    left_event: str = "on_client_disconnected"  # ... and the one that says the caller left

    def call_start(self, params: dict) -> CallStart:
        """The call a verified start announces (raises ``BadCallStart``)."""
        raise NotImplementedError

    def apology(self, text: str) -> str:
        """What the provider is answered with when the call gets no bot (unknown number, busy)."""
        raise NotImplementedError

    def control(self, start: dict, connection) -> CallControl:
        """Hang-up, transfer and DTMF for this call, as far as the provider offers them."""
        return CallControl()


class WebhookAdapter(Adapter):
    webhook_path: str | None = None  # POST, verified by ``verify``; None: the provider announces nothing

    def verify(self, request: signatures.SignedRequest) -> None:
        """Raise ``signatures.SignatureError`` unless the provider signed ``request``."""
        signatures.verify(self.name, request)


class StreamAdapter(WebhookAdapter):
    """A provider whose caller's audio comes over a media websocket (Pipecat's serializers)."""

    kind = STREAM
    stream_path: str = ""
    media_type = "application/xml"
    call_id_fields: tuple[str, ...] = ()

    def call_start(self, params: dict) -> CallStart:
        call_id = next((params[name] for name in self.call_id_fields if params.get(name)), "")
        if not call_id:
            raise BadCallStart(f"{self.call_id_fields[-1]} missing")
        return CallStart(self.name, call_id, from_=params.get("From", ""), to=params.get("To", ""))

    def answer(self, stream_url: str, token: str) -> str:
        """The document that connects the media stream to ``stream_url`` with its stream ``token``."""
        raise NotImplementedError

    def stream_token(self, websocket, start: dict) -> str:
        return websocket.query_params.get("token", "")

    def stream_start(self, websocket, start: dict, tokens: TokenBook) -> CallStart:
        """The call a media stream belongs to, from its token (never the start's own numbers).

        Raises ``stream_tokens.BadStreamToken`` (or ``streams.BadStart``). May read the
        database (Exotel), so the runner calls it in a database thread.
        """
        call_id = start.get("call_id") or ""
        grant = tokens.redeem(self.stream_token(websocket, start) or "", provider=self.name, call_id=call_id)
        return CallStart(self.name, call_id or start.get("stream_id") or "", from_=grant.from_, to=grant.to,
                         outbound_call=grant.outbound_call, answered_by=grant.answered_by)

    def serializer(self, start: dict):
        raise NotImplementedError

    # --- Calling out (``outbound_path`` empty: this provider only answers) ---
    outbound_path: str = ""  # the answer URL of a placed call: answered with ``answer`` like a voice webhook
    status_path: str = ""  # the provider's status callbacks for placed calls
    provider_statuses: dict[str, str] = {}  # the provider's call status -> ``Call.Status``

    def dial(self, *, to: str, from_: str, answer_url: str, status_url: str, ring_timeout_sec: int) -> str:
        """Ask the provider to call ``to`` from ``from_`` (blocking; the dial task runs it); its call id.

        Raises ``rest.ProviderNotConfigured`` or ``rest.DialRefused`` (the message says why)."""
        raise NotImplementedError

    def machine_verdict(self, params: dict) -> str:
        """The provider's answering-machine verdict in a placed call's answer webhook
        (``telephony.base.MACHINE_VERDICTS``); "" when it ran none."""
        return ""

    def status_update(self, params: dict) -> tuple[str, str]:
        """(``Call.Status`` or "" if unknown, the provider's call id) of a verified status callback."""
        raw = str(params.get("CallStatus") or params.get("call_status") or "").lower()
        call_id = next((params[name] for name in self.call_id_fields if params.get(name)), "")
        return self.provider_statuses.get(raw, ""), str(call_id)

    def transport(self, websocket, start: dict):
        return streams.websocket_transport(websocket, self.serializer(start))


class RoomAdapter(WebhookAdapter):
    """A provider that bridges the caller into a room the bot joins."""

    kind = ROOM
    room_errors: tuple[type[Exception], ...] = ()  # what ``open_room`` raises when the room cannot be made

    async def open_room(self, params: dict, bot_name: str, *, transport=None) -> tuple[object, str]:
        """(the bot's transport, the room URL) for a verified, admitted call; ``transport``: a stand-in
        for the provider's media client, called as the adapter documents (tests)."""
        raise NotImplementedError

    def apology(self, text: str) -> str:
        return text  # the runner answers room webhooks with JSON


class BrowserAdapter(Adapter):
    kind = BROWSER
    page_path = "/call/{slug}"
    offer_path = "/call/{slug}/offer"


def with_token(url: str, token: str) -> str:
    return f"{url}?{urlencode({'token': token})}"
