"""Who may open an Asterisk stream (``ASTERISK_ALLOWED_PEERS``) and which number it is for (the stream secret)."""

from __future__ import annotations

import hmac
import ipaddress
import uuid

from django.conf import settings
from django.db import connections

from voicebot.asterisk_setup import audiosocket_uuid

PROVIDER = "asterisk"


def allowed_networks() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """``settings.ASTERISK_ALLOWED_PEERS`` as networks (IPs or CIDRs); empty: loopback only."""
    peers = [p.strip() for p in (settings.ASTERISK_ALLOWED_PEERS or []) if p.strip()]
    if not peers:
        return [ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128")]
    return [ipaddress.ip_network(p, strict=False) for p in peers]


def peer_allowed(host: str | None) -> bool:
    """Whether ``host`` (the TCP peer's address, never a forwarded header) may open a stream."""
    try:
        address = ipaddress.ip_address((host or "").split("%")[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return any(address.version == net.version and address in net for net in allowed_networks())


def _closing(fn):
    def run(*args):
        try:
            return fn(*args)
        finally:
            connections.close_all()  # the runner lives for days: no per-thread connections left open

    return run


def _number_for_secret(secret: str) -> str | None:
    from voicebot.models import PhoneNumber

    if not secret:
        return None
    phone = PhoneNumber.objects.routable().filter(provider=PROVIDER, stream_secret=secret).first()
    return phone.number if phone is not None else None


def _number_for_uuid(stream_uuid: uuid.UUID) -> str | None:
    from voicebot.models import PhoneNumber

    found = None
    for number, secret in PhoneNumber.objects.routable().filter(provider=PROVIDER).values_list(
            "number", "stream_secret"):
        if hmac.compare_digest(audiosocket_uuid(secret).bytes, stream_uuid.bytes):
            found = number
    return found


async def number_for_secret(secret: str) -> str | None:
    """The routable Asterisk number whose stream secret this is (in a worker thread), or None."""
    from asgiref.sync import sync_to_async

    return await sync_to_async(_closing(_number_for_secret), thread_sensitive=False)(secret)


async def number_for_uuid(stream_uuid: uuid.UUID) -> str | None:
    """The routable Asterisk number whose AudioSocket UUID this is (in a worker thread), or None."""
    from asgiref.sync import sync_to_async

    return await sync_to_async(_closing(_number_for_uuid), thread_sensitive=False)(stream_uuid)
