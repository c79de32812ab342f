"""Provider media websockets (Twilio, Telnyx, Plivo, Exotel): reading the start, the transport.

The start is read by Pipecat's one parser (``parse_telephony_websocket``); which call it
is comes from the stream token the verified webhook issued (or, for Exotel, from the
number's stream secret), never from the start's own fields. Hang-up and transfer go
through the adapter's ``CallControl``, called once by ``LiveCall.run`` rather than by the
serializers on every end of the pipeline, so serializers run with ``auto_hang_up=False``.
"""

from __future__ import annotations

import asyncio

from pipecat.runner.utils import parse_telephony_websocket
from pipecat.transports.websocket.fastapi import FastAPIWebsocketParams, FastAPIWebsocketTransport

START_TIMEOUT_SECS = 10.0


class BadStart(ValueError):
    """The stream's first messages are not a start the provider's stream may begin with; the message says why."""


def websocket_transport(websocket, serializer) -> FastAPIWebsocketTransport:
    return FastAPIWebsocketTransport(websocket, FastAPIWebsocketParams(
        audio_in_enabled=True, audio_out_enabled=True, add_wav_header=False, serializer=serializer))


async def read_start(websocket, provider: str, *, timeout: float = START_TIMEOUT_SECS) -> dict:
    """The provider's start (ids, numbers, custom parameters) through Pipecat's one parser.

    Raises ``BadStart`` for a stream that sends nothing in time, binary or non-JSON
    frames, a JSON list, or another provider's start.
    """
    try:
        detected, data = await asyncio.wait_for(parse_telephony_websocket(websocket), timeout)
    except TimeoutError:
        raise BadStart(f"no start message within {timeout:.0f} s") from None
    except Exception as exc:  # noqa: BLE001 - whatever the frames were, the stream is refused cleanly
        raise BadStart(f"unreadable start ({type(exc).__name__}: {str(exc)[:120]})") from None
    if detected != provider:
        raise BadStart(f"expected a {provider} media stream start, got {detected!r}")
    data = dict(data.model_dump(by_alias=True)) if hasattr(data, "model_dump") else dict(data)
    if not (data.get("call_id") or data.get("stream_id")):
        raise BadStart("the start names no call or stream id")
    return data
