"""Telnyx, Plivo and Exotel media websockets through Pipecat's serializers.

Same rules as Twilio: the called number picks the bot; an unknown or inactive
number hears a short apology and the call is hung up. Hang-up and transfer go
through ``provider_control.py`` (the call's ``CallControl``: Telnyx and Plivo
REST APIs; Exotel by closing the stream), called once by ``LiveCall.run``
rather than by the serializers on every end of the pipeline, so these run with
``auto_hang_up=False``; Plivo's stream start has no numbers, so its answer XML
passes them in the stream URL's query string.
"""

from __future__ import annotations

from xml.sax.saxutils import escape

from loguru import logger
from pipecat.frames.frames import EndFrame, TTSSpeakFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.runner.utils import parse_telephony_websocket
from pipecat.transports.websocket.fastapi import FastAPIWebsocketParams, FastAPIWebsocketTransport
from pipecat.workers.runner import WorkerRunner

from pipelines.live.services import SharedPiperTTSService

PROVIDERS = ("telnyx", "plivo", "exotel")


def serializer_for(provider: str, data):
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


async def parse_start(websocket, provider: str) -> dict:
    """(numbers, ids) from the provider's first messages; query parameters fill what is missing."""
    detected, data = await parse_telephony_websocket(websocket)
    if detected != provider:
        raise ValueError(f"expected a {provider} media stream, got {detected!r}")
    data = dict(data.model_dump(by_alias=True)) if hasattr(data, "model_dump") else dict(data)
    query = websocket.query_params
    data["to"] = data.get("to") or query.get("to", "")
    data["from"] = data.get("from") or query.get("from", "")
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


def log_rejected(provider: str, data: dict, exc) -> None:
    logger.warning(f"{provider} call {data.get('call_id')} from {data.get('from')}: {exc}; apologising and closing")
