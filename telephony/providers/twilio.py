"""Twilio: the voice webhook (TwiML), Media Streams, and REST hang-up/transfer.

The stream token rides in a TwiML ``<Parameter>`` (the start's ``customParameters``). The
REST calls go to ``settings.TWILIO_API_BASE_URL`` (tests: a local fake). No DTMF: Twilio
plays digits only through new TwiML, which would end the media stream.
"""

from __future__ import annotations

from xml.sax.saxutils import escape, quoteattr

from django.conf import settings

from telephony.base import HUMAN, MACHINE, MACHINE_AFTER_GREETING, UNKNOWN_NUMBER_APOLOGY, CallControl
from telephony.providers import rest
from telephony.providers.adapter import StreamAdapter


def stream_twiml(stream_url: str, params: dict[str, str]) -> str:
    parameters = "".join(f"<Parameter name={quoteattr(k)} value={quoteattr(v)}/>" for k, v in params.items())
    return (f'<?xml version="1.0" encoding="UTF-8"?><Response><Connect><Stream url={quoteattr(stream_url)}>'
            f"{parameters}</Stream></Connect></Response>")


def apology_twiml(text: str = UNKNOWN_NUMBER_APOLOGY) -> str:
    return f'<?xml version="1.0" encoding="UTF-8"?><Response><Say>{escape(text)}</Say><Hangup/></Response>'


def _call_url(call_sid: str) -> str:
    base = settings.TWILIO_API_BASE_URL.rstrip("/")
    return f"{base}/2010-04-01/Accounts/{settings.TWILIO_ACCOUNT_SID}/Calls/{call_sid}.json"


async def _update_call(call_sid: str, data: dict) -> None:
    await rest.send("twilio", call_sid, "POST", _call_url(call_sid), data=data,
                    auth=(settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN))


def twilio_control(call_sid: str) -> CallControl:
    async def hang_up():
        await _update_call(call_sid, {"Status": "completed"})

    async def transfer(number: str):
        await _update_call(call_sid, {"Twiml": f"<Response><Dial>{escape(number)}</Dial></Response>"})

    return CallControl(hang_up=hang_up, transfer=transfer)


def _calls_url() -> str:
    return f"{settings.TWILIO_API_BASE_URL.rstrip('/')}/2010-04-01/Accounts/{settings.TWILIO_ACCOUNT_SID}/Calls.json"


class Twilio(StreamAdapter):
    name = "twilio"
    webhook_path = "/telephony/twilio/voice"
    stream_path = "/telephony/twilio/media"
    outbound_path = "/telephony/twilio/outbound"
    status_path = "/telephony/twilio/status"
    call_id_fields = ("CallSid",)
    provider_statuses = {"queued": "queued", "initiated": "queued", "ringing": "ringing", "in-progress": "in-progress",
                         "answered": "in-progress", "completed": "completed", "busy": "busy", "no-answer": "no-answer",
                         "failed": "failed", "canceled": "canceled"}

    def dial(self, *, to: str, from_: str, answer_url: str, status_url: str, ring_timeout_sec: int) -> str:
        """Twilio's ``Calls.json``: the answer URL returns the stream TwiML once the callee picks up."""
        rest.require("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN")
        data = {"To": to, "From": from_, "Url": answer_url, "Method": "POST", "StatusCallback": status_url,
                "StatusCallbackMethod": "POST", "StatusCallbackEvent": ["initiated", "ringing", "answered", "completed"],
                "Timeout": str(ring_timeout_sec)}
        if settings.TWILIO_MACHINE_DETECTION:
            data["MachineDetection"] = settings.TWILIO_MACHINE_DETECTION
        answer = rest.dial("twilio", "POST", _calls_url(), data=data,
                           auth=(settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN))
        if not answer.get("sid"):
            raise rest.DialRefused(f"twilio answered the call request without a call sid: {str(answer)[:200]}")
        return str(answer["sid"])

    def machine_verdict(self, params: dict) -> str:
        """``AnsweredBy`` (with ``TWILIO_MACHINE_DETECTION``): human; machine_start, fax; or, with
        DetectMessageEnd, machine_end_beep / _silence / _other once the greeting is over."""
        answered_by = str(params.get("AnsweredBy") or "")
        if answered_by == "human":
            return HUMAN
        if answered_by.startswith("machine_end"):
            return MACHINE_AFTER_GREETING
        if answered_by in ("machine_start", "fax"):
            return MACHINE
        return ""

    def answer(self, stream_url: str, token: str) -> str:
        return stream_twiml(stream_url, {"token": token})

    def apology(self, text: str) -> str:
        return apology_twiml(text)

    def stream_token(self, websocket, start: dict) -> str:
        return (start.get("body") or {}).get("token") or ""

    def serializer(self, start: dict):
        from pipecat.serializers.twilio import TwilioFrameSerializer

        return TwilioFrameSerializer(stream_sid=start.get("stream_id") or "", call_sid=start.get("call_id"),
                                     params=TwilioFrameSerializer.InputParams(auto_hang_up=False))

    def control(self, start: dict, connection) -> CallControl:
        return twilio_control(start.get("call_id") or "")


ADAPTER = Twilio()
