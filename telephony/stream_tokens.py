"""Single-use tokens that bind a media stream to the verified webhook that announced it.

A provider's voice webhook is verified by its signature; the media websocket that
follows carries no signature of its own. So the webhook answer puts a token in
the stream's parameters (Twilio ``<Parameter>``, a query parameter elsewhere)
naming the provider, the call id, the numbers and the bot; the websocket's
``start`` is accepted only with a valid, unexpired, unused token for the same
provider and call id. The numbers the call runs on come from the token, never
from the stream's own (forgeable) fields.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass

from django.conf import settings
from django.core import signing

SALT = "voicebot.stream-token"


class BadStreamToken(Exception):
    """The stream's token is missing, forged, expired, spent or for another call; the message says which."""


@dataclass(frozen=True)
class StreamGrant:
    provider: str
    call_id: str
    to: str
    from_: str
    bot: str
    nonce: str
    outbound_call: int | None = None  # the placed Call a stream of an outbound call belongs to
    answered_by: str = ""  # ... and the provider's answering-machine verdict at its answer


def issue(*, provider: str, call_id: str, to: str, from_: str, bot: str, outbound_call: int | None = None,
          answered_by: str = "") -> str:
    payload = {"p": provider, "c": call_id, "t": to, "f": from_, "b": bot, "n": secrets.token_urlsafe(12)}
    if outbound_call is not None:
        payload["o"] = outbound_call
    if answered_by:
        payload["a"] = answered_by[:32]
    return signing.dumps(payload, salt=SALT, compress=True)


class SpentNonces:
    """Nonces already used, each remembered until its token would have expired anyway."""

    def __init__(self, *, ttl_sec: float | None = None):
        self.ttl_sec = ttl_sec
        self._spent: dict[str, float] = {}
        self._lock = threading.Lock()

    @property
    def ttl(self) -> float:
        return self.ttl_sec if self.ttl_sec is not None else settings.CALL_STREAM_TOKEN_TTL_SEC

    def spend(self, nonce: str) -> bool:
        """True the first time ``nonce`` is spent, False ever after (and for an empty nonce)."""
        now = time.monotonic()
        with self._lock:
            self._spent = {n: t for n, t in self._spent.items() if t > now}
            if not nonce or nonce in self._spent:
                return False
            self._spent[nonce] = now + self.ttl + 1
            return True


class TokenBook(SpentNonces):
    """Checks stream tokens; each can be redeemed once."""

    def redeem(self, token: str, *, provider: str, call_id: str) -> StreamGrant:
        """The grant of a valid token for this provider and call; it can never be used again."""
        if not token:
            raise BadStreamToken("no stream token: the stream did not come from a verified voice webhook")
        try:
            data = signing.loads(token, salt=SALT, max_age=self.ttl)
        except signing.SignatureExpired:
            raise BadStreamToken("the stream token has expired") from None
        except signing.BadSignature:
            raise BadStreamToken("the stream token is forged or corrupt") from None
        grant = StreamGrant(provider=data["p"], call_id=data["c"], to=data["t"], from_=data["f"], bot=data["b"],
                            nonce=data["n"], outbound_call=data.get("o"), answered_by=data.get("a", ""))
        if grant.provider != provider:
            raise BadStreamToken(f"the stream token is for a {grant.provider} call, not {provider}")
        if grant.call_id and grant.call_id != call_id:
            raise BadStreamToken(f"the stream token is for call {grant.call_id!r}, not {call_id!r}")
        if not self.spend(grant.nonce):
            raise BadStreamToken("the stream token was already used")
        return grant
