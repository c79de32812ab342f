"""Daily SIP dial-in: webhook -> a room through Daily's REST API -> the bot joins with DailyTransport.

Daily's pinless dial-in webhook posts ``To``, ``From``, ``callId`` and ``callDomain``. The
called number picks the bot (the runner refuses unknown numbers); a SIP-enabled room and an
owner token are created through ``settings.DAILY_API_URL`` (tests: a local fake) only for a
verified, admitted call, and the call's pipeline runs over ``DailyTransport`` with the
dial-in settings, so Daily forwards the caller into the room. The transport needs the
``daily-python`` package. No call control here yet (the bot leaving the room ends the call).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx
from django.conf import settings
from loguru import logger

from telephony.base import CallStart
from telephony.providers.adapter import BadCallStart, RoomAdapter


class DailyError(RuntimeError):
    pass


@dataclass(frozen=True)
class DialIn:
    to: str
    from_: str
    call_id: str
    call_domain: str

    @classmethod
    def from_webhook(cls, data: dict) -> DialIn:
        missing = [k for k in ("To", "From", "callId", "callDomain") if not data.get(k)]
        if missing:
            raise BadCallStart(f"Daily dial-in webhook is missing {', '.join(missing)}")
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


class Daily(RoomAdapter):
    name = "daily"
    webhook_path = "/telephony/daily/dialin"
    connected_event = "on_first_participant_joined"
    left_event = "on_participant_left"
    room_errors = (DailyError, httpx.HTTPError, ImportError)

    def call_start(self, params: dict) -> CallStart:
        dialin = DialIn.from_webhook(params)
        return CallStart(self.name, dialin.call_id, from_=dialin.from_, to=dialin.to)

    async def open_room(self, params: dict, bot_name: str, *, transport=None) -> tuple[object, str]:
        """``transport(room_url, token, dialin, bot_name)``: what joins the room (default ``daily_transport``).

        Raises ``DailyError``, ``httpx.HTTPError`` or ``ImportError`` (no daily-python).
        """
        dialin = DialIn.from_webhook(params)
        room_url, token = await create_room(dialin)
        joined = (transport or daily_transport)(room_url, token, dialin, bot_name)

        @joined.event_handler("on_dialin_ready")
        async def _ready(_transport, _cdata):
            logger.info(f"daily dial-in {dialin.call_id} ready in {room_url}")

        return joined, room_url


ADAPTER = Daily()
