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
