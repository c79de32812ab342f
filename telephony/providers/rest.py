"""The providers' REST call control, shared: credentials checked, one bounded request, "already gone" ignored.

Each REST call goes to the provider's ``*_API_BASE_URL`` setting (tests: a local fake).
A 404 (the caller already hung up; Telnyx also answers 422 with error 90018 "call has
already ended") is logged and ignored; any other error raises, and whoever called the
``CallControl`` logs it.
"""

from __future__ import annotations

import contextlib

import httpx
from django.conf import settings
from loguru import logger

TIMEOUT_SECS = 5


class ProviderNotConfigured(RuntimeError):
    """A provider setting the REST call needs is empty; the message names it."""


def require(*names: str) -> None:
    missing = [name for name in names if not getattr(settings, name, "")]
    if missing:
        raise ProviderNotConfigured(f"{', '.join(missing)} not set: cannot control the call")


def _gone(response: httpx.Response) -> bool:
    """The call no longer exists on the provider's side (the caller hung up first)."""
    if response.status_code == 404:
        return True
    if response.status_code == 422:  # Telnyx: {"errors": [{"code": "90018", "title": "Call has already ended"}]}
        with contextlib.suppress(ValueError, AttributeError):
            return any(str(e.get("code")) == "90018" for e in response.json().get("errors", []))
    return False


async def send(provider: str, call_id: str, method: str, url: str, **kwargs) -> None:
    async with httpx.AsyncClient(timeout=TIMEOUT_SECS) as client:
        response = await client.request(method, url, **kwargs)
    if _gone(response):
        logger.info(f"{provider} call {call_id} already gone ({response.status_code})")
        return
    response.raise_for_status()


class DialRefused(RuntimeError):
    """The provider did not place the call (its error, or no answer); the message says why."""


def dial(provider: str, method: str, url: str, **kwargs) -> dict:
    """One blocking request that asks ``provider`` to place a call; its JSON answer.

    Not retried: a request whose answer was lost may still have placed the call, and
    dialling twice calls a person twice.
    """
    try:
        with httpx.Client(timeout=TIMEOUT_SECS) as client:
            response = client.request(method, url, **kwargs)
    except httpx.HTTPError as exc:
        raise DialRefused(f"{provider} could not be reached: {type(exc).__name__}: {exc}") from None
    if response.status_code >= 400:
        detail = response.text[:300].replace("\n", " ")
        raise DialRefused(f"{provider} refused the call: HTTP {response.status_code} {detail}")
    try:
        data = response.json()
    except ValueError:
        raise DialRefused(f"{provider} answered the call request with no JSON (HTTP {response.status_code})") from None
    return data if isinstance(data, dict) else {"data": data}
