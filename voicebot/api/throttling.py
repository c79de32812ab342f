"""Throttling of the web process: REST API rates and the admin login lockout.

* ``client_ip``: the client address both count by; ``X-Forwarded-For`` is believed only
  from ``TRUSTED_PROXIES``; ``None`` when there is no usable address.
* API: ``ClientRateThrottle`` (scope ``client``) counts authenticated requests per API
  key or staff user; ``FailedAuthThrottle`` (scope ``anon``) counts requests without
  valid credentials per IP: ``ApiKeyAuthentication`` refuses key attempts from an IP past
  that rate before looking the key up, and ``gate_unauthenticated`` (called by the API's
  exception handler) turns a credential-less request past it into 429. Counts live in the
  ``throttle`` cache; when that cache (Redis) fails, they go to process memory for a while
  instead of failing the request.
* Admin login: ``LoginLockoutBackend`` is django-axes' lockout check for logins that come
  with a request; ``login_lockout_response`` is the 429 page.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import time

from asgiref.sync import sync_to_async
from axes.backends import AxesStandaloneBackend
from django.conf import settings
from django.core.cache import caches
from django.core.exceptions import ImproperlyConfigured
from django.shortcuts import render
from rest_framework import exceptions, throttling
from rest_framework.settings import api_settings

from voicebot.models import ApiKey

log = logging.getLogger(__name__)

# --- Client address ------------------------------------------------------------------


def _ip(value: str | None) -> str | None:
    """A normalised IP address from a header value ("1.2.3.4", "1.2.3.4:80", "[::1]:80"), or None."""
    value = (value or "").strip()
    if value.startswith("[") and "]" in value:
        value = value[1:value.index("]")]
    elif value.count(":") == 1:
        value = value.split(":", 1)[0]
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None


@functools.lru_cache(maxsize=8)
def _networks(proxies: tuple[str, ...]):
    return tuple(ipaddress.ip_network(p.strip(), strict=False) for p in proxies if p.strip())


def _trusted(ip: str) -> bool:
    networks = _networks(tuple(settings.TRUSTED_PROXIES))
    address = ipaddress.ip_address(ip)
    return any(address in network for network in networks)


def client_ip(request) -> str | None:
    """The client's IP: REMOTE_ADDR, or behind trusted proxies the nearest untrusted hop."""
    meta = request.META
    address = _ip(meta.get("REMOTE_ADDR"))
    if address is None or not settings.TRUSTED_PROXIES or not _trusted(address):
        return address
    hops = [hop for hop in meta.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
    for hop in reversed(hops):
        hop_ip = _ip(hop)
        if hop_ip is None:  # garbage in the chain: believe nothing further out
            return address
        address = hop_ip
        if not _trusted(hop_ip):
            return hop_ip
    return address


# --- A throttle cache that never fails a request ------------------------------------

FALLBACK_FOR_SEC = 30.0
_primary_down_until = 0.0


class ResilientCache:
    """``caches["throttle"]``, or ``caches["throttle-fallback"]`` while that one errors."""

    def _call(self, op: str, *args):
        global _primary_down_until
        if time.monotonic() >= _primary_down_until:
            try:
                return getattr(caches["throttle"], op)(*args)
            except Exception:  # Redis restarting must not turn API calls into 500s
                log.warning("Throttle cache unavailable; counting in process memory for %.0f s",
                            FALLBACK_FOR_SEC, exc_info=True)
                _primary_down_until = time.monotonic() + FALLBACK_FOR_SEC
        return getattr(caches["throttle-fallback"], op)(*args)

    def get(self, key, default=None):
        return self._call("get", key, default)

    def set(self, key, value, timeout=None):
        return self._call("set", key, value, timeout)


def reset_fallback() -> None:
    """Use the primary throttle cache again at once (tests)."""
    global _primary_down_until
    _primary_down_until = 0.0


# --- REST API throttles --------------------------------------------------------------


class RateThrottle(throttling.SimpleRateThrottle):
    """DRF's rate throttle, reading its rate at request time (so settings changes apply)."""

    cache = ResilientCache()

    def get_rate(self):
        try:
            return api_settings.DEFAULT_THROTTLE_RATES[self.scope]
        except KeyError:
            raise ImproperlyConfigured(f"No throttle rate set for scope {self.scope!r}") from None

    def get_ident(self, request):
        return client_ip(request) or "unknown"

    def _load(self, request, view=None) -> bool:
        """Fetch this request's history (dropping expired entries); False when not throttled."""
        if self.rate is None:
            return False
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return False
        self.history = self.cache.get(self.key, [])
        self.now = self.timer()
        while self.history and self.history[-1] <= self.now - self.duration:
            self.history.pop()
        return True

    def wait(self):
        """Seconds until one more request fits in the window."""
        if len(self.history) < self.num_requests:
            return None
        return max(self.history[self.num_requests - 1] + self.duration - self.now, 1.0)


class ClientRateThrottle(RateThrottle):
    """Authenticated API requests, per API key or per staff user."""

    scope = "client"

    def get_cache_key(self, request, view):
        if isinstance(request.auth, ApiKey):
            ident = f"key-{request.auth.pk}"
        elif request.user is not None and request.user.is_authenticated:
            ident = f"user-{request.user.pk}"
        else:
            return None  # counted by FailedAuthThrottle
        return self.cache_format % {"scope": self.scope, "ident": ident}


class FailedAuthThrottle(RateThrottle):
    """API requests without valid credentials, per client IP."""

    scope = "anon"

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}

    def blocked(self, request) -> float | None:
        """Seconds to wait when this IP is past its rate, else None (nothing recorded)."""
        if not self._load(request):
            return None
        return self.wait()

    def record(self, request) -> None:
        if self._load(request):
            self.throttle_success()


def gate_unauthenticated(exc, request):
    """A request without credentials is counted per IP; past the rate it gets 429 instead."""
    if isinstance(exc, exceptions.NotAuthenticated) and request is not None:
        gate = FailedAuthThrottle()
        wait = gate.blocked(request)
        if wait is None:
            gate.record(request)
        else:
            return exceptions.Throttled(wait)
    return exc


# --- Admin login lockout (django-axes) -------------------------------------------------


class LoginLockoutBackend(AxesStandaloneBackend):
    """django-axes' lockout check, for logins that come with a request (the admin form).

    ``authenticate()`` without a request (``Client.login`` in tests, a shell) is no web
    login: axes could not record it either, so it is not checked instead of raising.
    """

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)

    async def aauthenticate(self, request, username=None, password=None, **kwargs):
        return await sync_to_async(self.authenticate)(request, username=username, password=password, **kwargs)


def login_lockout_response(request, original_response=None, credentials=None):
    """The 429 lockout page, with Retry-After."""
    cooloff = settings.AXES_COOLOFF_TIME
    seconds = int(cooloff.total_seconds()) if cooloff else None
    context = {
        "failure_limit": settings.AXES_FAILURE_LIMIT,
        "cooloff_minutes": max(1, round(seconds / 60)) if seconds else None,
        "site_header": "Voicebot",
        "site_title": "Voicebot admin",
    }
    response = render(request, "admin/locked_out.html", context, status=settings.AXES_HTTP_RESPONSE_CODE)
    if seconds:
        response["Retry-After"] = str(seconds)
    return response
