"""Browser test calls over SmallWebRTC: the call page, the offer's checks, the transport.

Staff open ``/call/<slug>?token=...`` from the bot's admin page; the single-use link is
made and checked by ``voicebot.call_links`` (the runner spends it and checks that its user
may still see the bot's company). The caller hears the greeting once the peer connects.
"""

from __future__ import annotations

import html
import uuid
from pathlib import Path

from telephony.base import CallControl, CallStart
from telephony.providers.adapter import BrowserAdapter

PAGE = Path(__file__).resolve().parent / "static" / "call.html"
MAX_SDP_BYTES = 64 * 1024


def page(bot_name: str, offer_url: str, calls_url: str = "") -> str:
    return (PAGE.read_text().replace("__BOT_NAME__", html.escape(bot_name))
            .replace("__OFFER_URL__", html.escape(offer_url, quote=True))
            .replace("__CALLS_URL__", html.escape(calls_url, quote=True)))


def call_events(send, call_id: str):
    """An observer of the call's pipeline that tells the call page what happens, as JSON messages over the
    WebRTC data channel (``send``: the connection's ``send_app_message``):

    - ``{"type": "call", "id": ...}`` once: the call's id, by which the page links the stored call;
    - ``{"type": "state", "state": "listening" | "thinking" | "speaking"}``: the caller is talking or may
      talk, the caller's turn ended and the reply is being made, the bot's audio is playing;
    - ``{"type": "transcript", "role": "caller" | "bot", "text": ...}``: each line as it is heard or said.
    """
    from pipecat.frames.frames import (
        BotStartedSpeakingFrame,
        BotStoppedSpeakingFrame,
        TranscriptionFrame,
        TTSTextFrame,
        UserStartedSpeakingFrame,
        UserStoppedSpeakingFrame,
        VADUserStartedSpeakingFrame,
        VADUserStoppedSpeakingFrame,
    )
    from pipecat.observers.base_observer import BaseObserver

    states = {VADUserStartedSpeakingFrame: "listening", UserStartedSpeakingFrame: "listening",
              VADUserStoppedSpeakingFrame: "thinking", UserStoppedSpeakingFrame: "thinking",
              TranscriptionFrame: "thinking", BotStartedSpeakingFrame: "speaking",
              BotStoppedSpeakingFrame: "listening"}

    class CallEvents(BaseObserver):
        def __init__(self):
            super().__init__()
            self.state = ""
            self.bot_speaking = False
            send({"type": "call", "id": call_id})

        def _send(self, message: dict) -> None:
            try:
                send(message)
            except Exception:  # noqa: BLE001 - the page's channel closing must not touch the call
                pass

        async def on_push_frame(self, data) -> None:
            frame = data.frame
            state = states.get(type(frame))
            if not data.first_push or (state is None and not isinstance(frame, TTSTextFrame)):
                return  # a frame is reported once, however many processors pass it on
            if isinstance(frame, (BotStartedSpeakingFrame, BotStoppedSpeakingFrame)):
                self.bot_speaking = isinstance(frame, BotStartedSpeakingFrame)
            elif self.bot_speaking and state == "thinking":  # a VAD blip while the bot talks changes nothing
                return
            if isinstance(frame, TranscriptionFrame) and frame.text.strip():
                self._send({"type": "transcript", "role": "caller", "text": frame.text.strip()})
            elif isinstance(frame, TTSTextFrame) and frame.text.strip():
                self._send({"type": "transcript", "role": "bot", "text": frame.text.strip()})
            if state and state != self.state:
                self.state = state
                self._send({"type": "state", "state": state})

    return CallEvents()


def offer_problem(sdp: str) -> str | None:
    """Why an SDP offer cannot become a browser call (None when it can): aiortc answers even garbage,
    and the line it would hold is only freed by the no-audio limit, so garbage is refused up front."""
    from aiortc.sdp import SessionDescription

    if len(sdp) > MAX_SDP_BYTES:
        return "the SDP is larger than 64 KB"
    try:
        description = SessionDescription.parse(sdp)
    except Exception as exc:  # noqa: BLE001 - aiortc's parser raises several kinds
        return f"unreadable SDP ({type(exc).__name__})"
    audio = [m for m in description.media if m.kind == "audio"]
    if not audio:
        return "the SDP offers no audio"
    if not any(m.ice.usernameFragment and m.ice.password for m in audio) and not (
            description.media and description.media[0].ice.usernameFragment):
        return "the SDP has no ICE credentials"
    if not any(m.dtls and m.dtls.fingerprints for m in audio):
        return "the SDP has no DTLS fingerprint"
    return None


async def _played_transfer(number: str) -> None:
    """A test call has no phone leg to move: the call ends as transferred, as it would on a phone."""


class Browser(BrowserAdapter):
    name = "webrtc"
    connected_event = "on_client_connected"
    left_event = "on_client_disconnected"

    def call_start(self, params: dict) -> CallStart:
        """A fresh call id for a browser call to the bot ``params["slug"]`` (the link, not a number, picks it)."""
        return CallStart(self.name, f"webrtc-{uuid.uuid4().hex}")

    def apology(self, text: str) -> str:
        return text  # the offer is answered with JSON {"error": text}

    def page(self, bot_name: str, offer_url: str, calls_url: str = "") -> str:
        return page(bot_name, offer_url, calls_url)

    def observers(self, connection, call_id: str) -> list:
        """What watches the call for the page: its states and transcript over the data channel."""
        return [call_events(connection.send_app_message, call_id)]

    def offer_problem(self, sdp: str) -> str | None:
        return offer_problem(sdp)

    def transport(self, connection):
        from pipecat.transports.base_transport import TransportParams
        from pipecat.transports.smallwebrtc.transport import SmallWebRTCTransport

        return SmallWebRTCTransport(connection, TransportParams(audio_in_enabled=True, audio_out_enabled=True))

    def control(self, start: dict, connection) -> CallControl:
        return CallControl(transfer=_played_transfer)


ADAPTER = Browser()
