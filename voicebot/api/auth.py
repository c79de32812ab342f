"""API-key authentication: ``Authorization: Bearer vb_...`` acts for one company."""

from __future__ import annotations

from rest_framework import authentication, exceptions

from voicebot.models import ApiKey


class ApiKeyPrincipal:
    """The 'user' of a request made with an API key: the key's company, nothing more."""

    is_authenticated = True
    is_active = True
    is_superuser = False
    is_staff = False

    def __init__(self, key: ApiKey):
        self.key = key
        self.company = key.company
        self.pk = None

    def __str__(self) -> str:
        return f"API key {self.key.key_prefix} of {self.company}"


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1").split()
        if not header or header[0] != self.keyword:
            return None
        if len(header) != 2 or not header[1].startswith(ApiKey.PREFIX):
            raise exceptions.AuthenticationFailed("Malformed Authorization header; expected 'Bearer vb_...'.")
        key = ApiKey.authenticate(header[1])
        if key is None:
            raise exceptions.AuthenticationFailed("Unknown or revoked API key.")
        return ApiKeyPrincipal(key), key

    def authenticate_header(self, request):
        return self.keyword
