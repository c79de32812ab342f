"""The runner's public URLs: what providers call, and where their media streams go.

Never built from the request's ``Host`` header, which anyone can set: the base is
``VOICEBOT_RUNNER_PUBLIC_URL``. Behind a reverse proxy listed in
``VOICEBOT_TRUSTED_PROXIES`` the proxy's ``X-Forwarded-Proto`` and
``X-Forwarded-Host`` say how the provider reached it (they are ignored from
anyone else). Signature checks use the same URL, so a request whose URL was
not the one the provider signed fails.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from django.conf import settings


def _from_trusted_proxy(connection) -> bool:
    if not settings.TRUSTED_PROXIES or connection.client is None:
        return False
    try:
        peer = ipaddress.ip_address(connection.client.host)
    except ValueError:
        return False
    return any(peer in ipaddress.ip_network(net, strict=False) for net in settings.TRUSTED_PROXIES)


def public_base(connection) -> str:
    """``scheme://host[:port]`` as the provider reached this runner (http/https)."""
    base = urlsplit(settings.RUNNER_PUBLIC_URL.rstrip("/"))
    scheme, netloc = base.scheme or "http", base.netloc
    if _from_trusted_proxy(connection):
        proto = connection.headers.get("x-forwarded-proto", "").split(",")[0].strip()
        host = connection.headers.get("x-forwarded-host", "").split(",")[0].strip()
        scheme = proto if proto in ("http", "https") else scheme
        netloc = host or netloc
    return f"{scheme}://{netloc}{base.path}"


def request_url(connection) -> str:
    """The full public URL of this request (what the provider signed)."""
    query = connection.url.query
    return public_base(connection) + connection.url.path + (f"?{query}" if query else "")


def http_url(connection, path: str) -> str:
    return public_base(connection) + path


def stream_url(connection, path: str) -> str:
    """A ws(s):// URL on this runner, for a provider's media stream."""
    base = public_base(connection)
    return ("wss" + base[5:] if base.startswith("https") else "ws" + base[4:]) + path
