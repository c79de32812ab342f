"""Provider media websockets (Twilio, Telnyx, Plivo, Exotel) through Pipecat's serializers.

The start is read by Pipecat's one parser (``parse_telephony_websocket``); which
call it is comes from the stream token the verified webhook issued (or, for
Exotel, from the number's stream secret), never from the start's own fields.
Hang-up and transfer go through ``twilio.py`` and ``provider_control.py`` (the
call's ``CallControl``), called once by ``LiveCall.run`` rather than by the
serializers on every end of the pipeline, so these run with ``auto_hang_up=False``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Callable
from urllib.parse import urlencode
from xml.sax.saxutils import escape

from pipecat.frames.frames import EndFrame, TTSSpeakFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.runner.utils import parse_telephony_websocket
from pipecat.transports.websocket.fastapi import FastAPIWebsocketParams, FastAPIWebsocketTransport
from pipecat.workers.runner import WorkerRunner

from pipelines.live import twilio
from pipelines.live.services import SharedPiperTTSService

PROVIDERS = ("twilio", "telnyx", "plivo", "exotel")
START_TIMEOUT_SECS = 10.0


class BadStart(ValueError):
    """The stream's first messages are not a start of the expected provider; the message says why."""


def serializer_for(provider: str, data):
    if provider == "twilio":
        from pipecat.serializers.twilio import TwilioFrameSerializer

        return TwilioFrameSerializer(stream_sid=data.get("stream_id") or "", call_sid=data.get("call_id"),
                                     params=TwilioFrameSerializer.InputParams(auto_hang_up=False))
    if provider == "telnyx":
        from pipecat.serializers.telnyx import TelnyxFrameSerializer

        encoding = data.get("outbound_encoding") or "PCMU"
        return TelnyxFrameSerializer(stream_id=data.get("stream_id"), outbound_encoding=encoding,
                                     inbound_encoding=encoding, call_control_id=data.get("call_id"),
                                     params=TelnyxFrameSerializer.InputParams(auto_hang_up=False))
    if provider == "plivo":
        from pipecat.serializers.plivo import PlivoFrameSerializer

        return PlivoFrameSerializer(stream_id=data.get("stream_id"), call_id=data.get("call_id"),
                                    params=PlivoFrameSerializer.InputParams(auto_hang_up=False))
    if provider == "exotel":
        from pipecat.serializers.exotel import ExotelFrameSerializer

        return ExotelFrameSerializer(stream_sid=data.get("stream_id"), call_sid=data.get("call_id"))
    raise ValueError(f"unknown telephony provider {provider!r} (known: {', '.join(PROVIDERS)})")


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
    except asyncio.TimeoutError:
        raise BadStart(f"no start message within {timeout:.0f} s") from None
    except Exception as exc:  # noqa: BLE001 - whatever the frames were, the stream is refused cleanly
        raise BadStart(f"unreadable start ({type(exc).__name__}: {str(exc)[:120]})") from None
    if detected != provider:
        raise BadStart(f"expected a {provider} media stream start, got {detected!r}")
    data = dict(data.model_dump(by_alias=True)) if hasattr(data, "model_dump") else dict(data)
    if not (data.get("call_id") or data.get("stream_id")):
        raise BadStart("the start names no call or stream id")
    return data


async def say_and_close(transport, text: str) -> None:
    """A one-line pipeline: speak ``text`` (the apology) and end."""
    tts = SharedPiperTTSService()
    worker = PipelineWorker(Pipeline([transport.input(), tts, transport.output()]),
                            params=PipelineParams(audio_in_sample_rate=16000, audio_out_sample_rate=16000),
                            idle_timeout_secs=None, enable_rtvi=False, enable_turn_tracking=False)
    await worker.queue_frames([TTSSpeakFrame(text, append_to_context=False), EndFrame()])
    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    await runner.run()


def plivo_answer_xml(stream_url: str) -> str:
    return ('<?xml version="1.0" encoding="UTF-8"?><Response><Stream bidirectional="true" keepCallAlive="true" '
            f'contentType="audio/x-mulaw;rate=8000">{escape(stream_url)}</Stream></Response>')




def telnyx_stream_texml(stream_url: str) -> str:
    """TeXML that connects a bidirectional media stream (PCMU, Telnyx's default)."""
    from xml.sax.saxutils import quoteattr

    return ('<?xml version="1.0" encoding="UTF-8"?><Response><Connect>'
            f'<Stream url={quoteattr(stream_url)} bidirectionalMode="rtp"/></Connect></Response>')


def plivo_apology_xml(text: str) -> str:
    """Plivo's answer that says ``text`` and hangs up (TeXML, like TwiML, uses ``twilio.apology_twiml``)."""
    return f'<?xml version="1.0" encoding="UTF-8"?><Response><Speak>{escape(text)}</Speak><Hangup/></Response>'


@dataclass(frozen=True)
class VoiceWebhook:
    """How a provider announces a call and how it is answered: the route, where the call id is,
    the apology document (unknown number, busy) and the document that connects the media stream."""

    path: str
    call_id_fields: tuple[str, ...]
    apology: Callable[[str], str]
    stream: Callable[[str, str], str]  # (stream URL, token) -> the answer


def _with_token(url: str, token: str) -> str:
    return f"{url}?{urlencode({'token': token})}"


VOICE_WEBHOOKS = {
    "twilio": VoiceWebhook("/telephony/twilio/voice", ("CallSid",), twilio.apology_twiml,
                           lambda url, token: twilio.stream_twiml(url, {"token": token})),
    # Telnyx TeXML (TwiML-compatible): the token rides on the stream URL (TeXML streams have no parameters).
    "telnyx": VoiceWebhook("/telephony/telnyx/voice", ("CallControlId", "CallSid"), twilio.apology_twiml,
                           lambda url, token: telnyx_stream_texml(_with_token(url, token))),
    "plivo": VoiceWebhook("/telephony/plivo/answer", ("CallUUID",), plivo_apology_xml,
                          lambda url, token: plivo_answer_xml(_with_token(url, token))),
}
