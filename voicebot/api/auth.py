"""API-key authentication: ``Authorization: Bearer vb_...`` acts for its company (or, an
agency key, for every company); ``voicebot.api.permissions`` enforces read-only keys.

Failed key attempts are counted per client IP (``FailedAuthThrottle``); an IP past that
rate gets 429 before its key is even looked up.
"""

from __future__ import annotations

from rest_framework import authentication, exceptions

from voicebot.api.throttling import FailedAuthThrottle
from voicebot.models import ApiKey


class ApiKeyPrincipal:
    """The 'user' of a request made with an API key: the key's company (None: agency), nothing more."""

    is_authenticated = True
    is_active = True
    is_superuser = False
    is_staff = False

    def __init__(self, key: ApiKey):
        self.key = key
        self.company = key.company
        self.pk = None

    def __str__(self) -> str:
        return f"API key {self.key.key_prefix} of {self.company or 'the agency'}"


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1").split()
        if not header or header[0] != self.keyword:
            return None
        failures = FailedAuthThrottle()
        wait = failures.blocked(request)
        if wait is not None:
            raise exceptions.Throttled(wait, detail="Too many failed API-key attempts from this address.")
        if len(header) != 2 or not header[1].startswith(ApiKey.PREFIX):
            failures.record(request)
            raise exceptions.AuthenticationFailed("Malformed Authorization header; expected 'Bearer vb_...'.")
        key = ApiKey.authenticate(header[1])
        if key is None:
            failures.record(request)
            raise exceptions.AuthenticationFailed("Unknown or revoked API key.")
        return ApiKeyPrincipal(key), key

    def authenticate_header(self, request):
        return self.keyword
