"""Browser test calls over SmallWebRTC: the call page and its signed link.

Staff open ``/call/<slug>?token=...`` from the bot's admin page; the token is
made and checked by ``voicebot.call_links``.
"""

from __future__ import annotations

import html
from pathlib import Path

PAGE = Path(__file__).resolve().parent / "static" / "call.html"


def page(bot_name: str, offer_url: str) -> str:
    return (PAGE.read_text().replace("__BOT_NAME__", html.escape(bot_name))
            .replace("__OFFER_URL__", html.escape(offer_url, quote=True)))


def offer_problem(sdp: str) -> str | None:
    """Why an SDP offer cannot become a browser call (None when it can): aiortc answers even garbage,
    and the line it would hold is only freed by the no-audio limit, so garbage is refused up front."""
    from aiortc.sdp import SessionDescription

    if len(sdp) > 64 * 1024:
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
