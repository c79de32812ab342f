"""What a request may do once authenticated.

``KeyAccess``: a read-only API key may only read (GET, HEAD, OPTIONS, and the POST
actions a view lists in ``read_actions``, such as a knowledge search, which change
nothing); a read-write key or a staff session may also write.
"""

from rest_framework import permissions

from voicebot.models import ApiKey


class KeyAccess(permissions.BasePermission):
    message = "This API key is read-only."

    def has_permission(self, request, view):
        if not isinstance(request.auth, ApiKey) or not request.auth.read_only:
            return True
        return request.method in permissions.SAFE_METHODS or getattr(view, "action", None) in getattr(
            view, "read_actions", ())


class AgencyOnly(permissions.BasePermission):
    """Agency-level operations (creating companies): agency keys and superusers."""

    message = "Only agency keys and superusers may do this."

    def has_permission(self, request, view):
        if isinstance(request.auth, ApiKey):
            return request.auth.is_agency
        return bool(request.user and request.user.is_superuser)


def is_agency(request) -> bool:
    """An agency key, or a superuser's session: may act on every company and create them."""
    return AgencyOnly().has_permission(request, None)
