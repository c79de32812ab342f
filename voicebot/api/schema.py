"""The OpenAPI 3 schema (drf-spectacular): bearer keys, and the one error shape on every operation.

``add_error_responses`` documents the 4xx every operation can answer with the ``Error``
component, so that a client generated from the schema (and Schemathesis) knows them.
"""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension

ERROR_RESPONSES = {
    "400": "Invalid input: the fields named in error.fields, or a query parameter.",
    "401": "No API key, or an unknown or revoked one.",
    "403": "The key or user may not do this (a read-only key writing, a company key creating a company).",
    "404": "No such object in the companies this key or user may see.",
    "405": "This method is not allowed on this path.",
    "406": "The Accept header asks for a format this endpoint does not produce.",
    "409": "The object's state does not allow this now.",
    "413": "The request body is too large.",
    "415": "The request body's Content-Type is not accepted here.",
    "429": "Too many requests for this key (see Retry-After).",
}

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "fields"],
            "properties": {
                "code": {"type": "string", "example": "invalid",
                         "description": "A stable word: invalid, not_found, permission_denied, conflict, throttled..."},
                "message": {"type": "string", "example": "name: This field is required.",
                            "description": "What was wrong, in one sentence."},
                "fields": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}},
                           "example": {"name": ["This field is required."]},
                           "description": "Invalid fields (nested ones as tools[0].url) and their messages."},
            },
        }
    },
}


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "voicebot.api.auth.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "bearerFormat": "vb_...",
                "description": "An API key from admin (API keys): `Authorization: Bearer vb_...`."}


def add_error_responses(result, generator, request, public):
    """Every operation: the ``Error`` body for each 4xx it does not document itself."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    reference = {"$ref": "#/components/schemas/Error"}
    for path_item in result.get("paths", {}).values():
        for method, operation in path_item.items():
            if method not in ("get", "put", "patch", "post", "delete"):
                continue
            responses = operation.setdefault("responses", {})
            for code, description in ERROR_RESPONSES.items():
                responses.setdefault(code, {"description": description,
                                            "content": {"application/json": {"schema": reference}}})
    return result

