"""Signed test-call links: the admin makes them, the call runner checks them.

A link to the runner's browser call page (``/call/<slug>?token=...``) carries a
Django signature of the bot's slug, valid for an hour, so the runner never
serves a bot's call page without a staff member having asked for it.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.conf import settings
from django.core import signing

SALT = "voicebot.call-page"
MAX_AGE_SEC = 3600


class BadCallToken(Exception):
    """The link is missing, forged, expired or for another bot; the message says which."""


def sign(slug: str) -> str:
    return signing.dumps({"bot": slug}, salt=SALT)


def check(token: str, slug: str) -> None:
    try:
        data = signing.loads(token or "", salt=SALT, max_age=MAX_AGE_SEC)
    except signing.SignatureExpired as exc:
        raise BadCallToken("the test-call link has expired; open it again from the bot's admin page") from exc
    except signing.BadSignature as exc:
        raise BadCallToken("missing or invalid test-call token") from exc
    if data.get("bot") != slug:
        raise BadCallToken("this test-call link is for another bot")


def call_page_url(slug: str) -> str:
    return f"{settings.RUNNER_PUBLIC_URL.rstrip('/')}/call/{slug}?{urlencode({'token': sign(slug)})}"
