"""Daily SIP dial-in: webhook -> a room through Daily's REST API -> the bot joins with DailyTransport.

Daily's pinless dial-in webhook posts ``To``, ``From``, ``callId`` and
``callDomain``. The called number picks the bot (unknown numbers are refused
and logged); a SIP-enabled room and an owner token are created through
``settings.DAILY_API_URL`` (tests: a local fake), and the call's pipeline runs
over ``DailyTransport`` with the dial-in settings, so Daily forwards the caller
into the room. The transport needs the ``daily-python`` package.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx
from django.conf import settings


class DailyError(RuntimeError):
    pass


@dataclass(frozen=True)
class DialIn:
    to: str
    from_: str
    call_id: str
    call_domain: str

    @classmethod
    def from_webhook(cls, data: dict) -> "DialIn":
        missing = [k for k in ("To", "From", "callId", "callDomain") if not data.get(k)]
        if missing:
            raise ValueError(f"Daily dial-in webhook is missing {', '.join(missing)}")
        return cls(to=data["To"], from_=data["From"], call_id=data["callId"], call_domain=data["callDomain"])


async def create_room(dialin: DialIn, *, expires_in: int = 3600) -> tuple[str, str]:
    """(room URL, owner token) of a fresh SIP dial-in room."""
    headers = {"Authorization": f"Bearer {settings.DAILY_API_KEY}"}
    base = settings.DAILY_API_URL.rstrip("/")
    exp = int(time.time()) + expires_in
    async with httpx.AsyncClient(timeout=10, headers=headers) as client:
        room = await client.post(f"{base}/rooms", json={"properties": {
            "exp": exp, "sip": {"display_name": dialin.from_, "sip_mode": "dial-in", "num_endpoints": 1}}})
        if room.status_code >= 400:
            raise DailyError(f"Daily room creation failed: HTTP {room.status_code} {room.text[:200]}")
        room = room.json()
        token = await client.post(f"{base}/meeting-tokens", json={"properties": {
            "room_name": room["name"], "is_owner": True, "exp": exp}})
        if token.status_code >= 400:
            raise DailyError(f"Daily token creation failed: HTTP {token.status_code} {token.text[:200]}")
    return room["url"], token.json()["token"]


def daily_transport(room_url: str, token: str, dialin: DialIn, bot_name: str):
    try:
        from pipecat.transports.daily.transport import DailyDialinSettings, DailyParams, DailyTransport
    except ImportError as exc:  # daily-python is an optional install (pip install daily-python)
        raise ImportError(f"Daily dial-in needs the daily-python package ({exc})") from exc

    return DailyTransport(room_url, token, bot_name, DailyParams(
        api_url=settings.DAILY_API_URL, api_key=settings.DAILY_API_KEY,
        dialin_settings=DailyDialinSettings(call_id=dialin.call_id, call_domain=dialin.call_domain),
        audio_in_enabled=True, audio_out_enabled=True))
