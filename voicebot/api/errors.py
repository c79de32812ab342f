"""One error shape for every 4xx of the API.

Every error response body is::

    {"error": {"code": "invalid", "message": "name: This field is required.",
               "fields": {"name": ["This field is required."]}}}

``code`` is a stable machine word (``invalid``, ``not_found``, ``permission_denied``,
``conflict``...), ``message`` one sentence for a human, ``fields`` the invalid fields
(nested ones as ``tools[0].url``), empty when the error is not about fields.

``exception_handler`` builds it from DRF's exceptions, from Django's ``ValidationError``
(services validate like admin does) and from ``DataError`` (a value the database cannot
hold, such as an id past 64 bits): bad input is a 400, never a 500. Views raise
``ApiError`` for errors DRF has no class for (409 conflicts, a field-specific 400).
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError
from django.http import Http404, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, serializers, status


class ApiError(exceptions.APIException):
    """An error with a status, a code and (optionally) the fields it is about."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "invalid"

    def __init__(self, message: str, *, code: str | None = None, status_code: int | None = None,
                 fields: dict | None = None):
        super().__init__(detail=message, code=code or self.default_code)
        if status_code is not None:
            self.status_code = status_code
        self.fields = {name: _messages(value) for name, value in (fields or {}).items()}


class Conflict(ApiError):
    """The request is valid but the object's state does not allow it (409)."""

    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"


def field_error(field: str, message: str, *, status_code: int = 400) -> ApiError:
    """A 400 (or ``status_code``) about one field, its message also the error's message."""
    code = "conflict" if status_code == 409 else "invalid"
    return ApiError(f"{field}: {message}", code=code, status_code=status_code, fields={field: [message]})


def _messages(value) -> list[str]:
    if isinstance(value, (list, tuple)):
        return [str(item) for item in value]
    return [str(value)]


def flatten_fields(detail, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested error detail as ``{"a.b[0].c": ["message", ...]}``."""
    out: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            if isinstance(key, int):  # a list serializer's errors, by item index
                path = f"{prefix}[{key}]"
            else:
                name = "" if key == "non_field_errors" and not prefix else str(key)
                path = f"{prefix}.{name}" if prefix and name else (name or prefix)
            for field, messages in flatten_fields(value, path).items():
                out.setdefault(field, []).extend(messages)
    elif isinstance(detail, list):
        if all(not isinstance(item, (dict, list)) for item in detail):
            if detail:
                out.setdefault(prefix, []).extend(str(item) for item in detail)
        else:
            for index, item in enumerate(detail):
                for field, messages in flatten_fields(item, f"{prefix}[{index}]").items():
                    out.setdefault(field, []).extend(messages)
    elif detail is not None:
        out.setdefault(prefix, []).append(str(detail))
    return out


def error_body(code: str, message: str, fields: dict | None = None) -> dict:
    return {"error": {"code": code, "message": message, "fields": fields or {}}}


def _validation_message(fields: dict[str, list[str]]) -> str:
    if not fields:
        return "The request is invalid."
    name, messages = next(iter(fields.items()))
    first = f"{name}: {messages[0]}" if name else messages[0]
    more = len(fields) - 1
    return first if not more else f"{first} (and {more} more field{'s' if more > 1 else ''})"


def _code_of(exc: exceptions.APIException) -> str:
    codes = exc.get_codes()
    if isinstance(codes, str):
        return codes
    return getattr(exc, "default_code", "error")


def exception_handler(exc, context):
    """DRF's handler (with the failed-auth gate), then the body reshaped into ``error_body``."""
    from rest_framework.views import exception_handler as drf_exception_handler

    from voicebot.api.throttling import gate_unauthenticated

    if isinstance(exc, Http404):
        exc = exceptions.NotFound(str(exc) or None)
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    elif isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else {"": exc.messages}
        exc = exceptions.ValidationError(detail)
    elif isinstance(exc, DataError):
        exc = ApiError("A value in the request is out of range for its field.", code="out_of_range")
    exc = gate_unauthenticated(exc, context.get("request"))
    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # a real server error: Django's 500 handling (and logging) takes it
    if isinstance(exc, exceptions.ValidationError):
        fields = flatten_fields(exc.detail)
        response.data = error_body("invalid", _validation_message(fields), fields)
    elif isinstance(exc, ApiError):
        response.data = error_body(_code_of(exc), str(exc.detail), exc.fields)
    else:
        detail = exc.detail if isinstance(exc, exceptions.APIException) else response.data
        response.data = error_body(_code_of(exc) if isinstance(exc, exceptions.APIException) else "error",
                                   str(detail.get("detail", detail) if isinstance(detail, dict) else detail))
    return response


@csrf_exempt  # any method, cookie or not: the answer is the same 404 (not Django's CSRF page)
def not_found(request, *args, **kwargs):
    """Unknown paths under /api/: the API's 404 shape, not Django's HTML page."""
    return JsonResponse(error_body("not_found", f"No API endpoint at {request.path}."), status=404)


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="A stable word: invalid, not_found, permission_denied, conflict...")
    message = serializers.CharField(help_text="What was wrong, in one sentence.")
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        help_text="Invalid fields (nested ones as tools[0].url) and their messages; empty otherwise.")


class ErrorSerializer(serializers.Serializer):
    """The body of every 4xx response (documented in the schema as ``Error``)."""

    error = ErrorDetailSerializer()
