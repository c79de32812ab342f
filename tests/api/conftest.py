"""API clients: a key of company A (read-write and read-only), of company B, and an agency key."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from voicebot.models import ApiKey


def key_client(company, *, access: str = ApiKey.Access.READ_WRITE, name: str = "test") -> APIClient:
    _, raw = ApiKey.issue(company, name, access=access)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    client.raw_key = raw
    return client


@pytest.fixture
def api_a(company_a):
    return key_client(company_a)


@pytest.fixture
def api_b(company_b):
    return key_client(company_b)


@pytest.fixture
def readonly_a(company_a):
    return key_client(company_a, access=ApiKey.Access.READ, name="dashboards")


@pytest.fixture
def agency_api(db):
    return key_client(None, name="agency automation")


def assert_error(response, status: int, code: str | None = None, field: str | None = None) -> dict:
    """The one error shape: ``{"error": {"code", "message", "fields"}}``; returns ``error``."""
    assert response.status_code == status, (response.status_code, getattr(response, "content", b"")[:500])
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "fields"}, body
    error = body["error"]
    assert error["message"], error
    if code is not None:
        assert error["code"] == code, error
    if field is not None:
        assert field in error["fields"] and error["fields"][field], error
    return error
