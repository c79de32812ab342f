"""Exotel: a Voicebot applet's media stream; Exotel signs nothing and sends no webhook.

The stream URL staff paste into the applet holds the number's ``stream_secret``
(``/telephony/exotel/media/<secret>``): that secret, not the start's own numbers, says
which number was called. There is no REST call control. The bot hangs up by closing the
websocket, which ends the applet and lets the App Bazaar flow go on to its next applet (a
Hangup applet in the usual flow). Transfers (and DTMF) are not supported by Exotel
streams; the runner then runs the call as if the bot had no transfer number, so the
caller hears the engine's "can't put you through" reply instead of a transfer that never
comes.
"""

from __future__ import annotations

import contextlib

from telephony.base import CallControl, CallStart
from telephony.providers.adapter import StreamAdapter
from telephony.providers.streams import BadStart


def exotel_control(websocket) -> CallControl:
    """No REST: hang up = close the stream's websocket (the flow's next applet ends the call); no transfer."""

    async def hang_up():
        from starlette.websockets import WebSocketState

        if websocket.application_state != WebSocketState.DISCONNECTED:
            with contextlib.suppress(RuntimeError):  # closed meanwhile by the transport
                await websocket.close()

    return CallControl(hang_up=hang_up, transfer=None)


def number_of_secret(secret: str) -> str:
    """The routable Exotel number whose stream secret this is (reads the database)."""
    from voicebot.models import PhoneNumber

    number = (PhoneNumber.objects.routable().filter(provider="exotel", stream_secret=secret)
              .values_list("number", flat=True).first()) if secret else None
    if number is None:
        raise BadStart("no active exotel number has this stream secret")
    return number


class Exotel(StreamAdapter):
    name = "exotel"
    webhook_path = None
    stream_path = "/telephony/exotel/media/{secret}"

    def call_start(self, params: dict) -> CallStart:
        """The call a stream start names (its ``to`` is replaced by the secret's number in ``stream_start``)."""
        call_id = params.get("call_id") or params.get("stream_id") or ""
        if not call_id:
            raise BadStart("the start names no call or stream id")
        return CallStart(self.name, call_id, from_=params.get("from") or "", to=params.get("to") or "")

    def stream_start(self, websocket, start: dict, tokens) -> CallStart:
        number = number_of_secret(websocket.path_params.get("secret", ""))
        call = self.call_start(start)
        return CallStart(call.provider, call.call_id, from_=call.from_, to=number, number=number)

    def apology(self, text: str) -> str:
        return text  # no webhook to answer: the runner speaks it over the stream

    def serializer(self, start: dict):
        from pipecat.serializers.exotel import ExotelFrameSerializer

        return ExotelFrameSerializer(stream_sid=start.get("stream_id"), call_sid=start.get("call_id"))

    def control(self, start: dict, connection) -> CallControl:
        return exotel_control(connection)


ADAPTER = Exotel()
