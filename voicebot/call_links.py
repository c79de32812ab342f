"""Signed test-call links: the admin makes them, the call runner checks them.

A link to the runner's browser call page (``/call/<slug>?token=...``) carries a
Django signature of the bot's slug and the staff user who opened it, valid for
an hour and good for one call: the runner spends it on the WebRTC offer and
checks that the user is still active staff of the bot's company. So the runner
never starts a browser call that no staff member asked for, and a leaked link
cannot be replayed.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from urllib.parse import urlencode

from django.conf import settings
from django.core import signing

SALT = "voicebot.call-page"
MAX_AGE_SEC = 3600


class BadCallToken(Exception):
    """The link is missing, forged, expired, spent or for another bot; the message says which."""


@dataclass(frozen=True)
class CallTicket:
    bot: str
    user_id: int | None
    nonce: str
    calls_url: str = ""  # where the page links the stored call after hang-up (its id as ?q=): the admin's


def _admin_url(url: str) -> str:
    return url if url.startswith(("http://", "https://")) else ""


def sign(slug: str, user_id: int | None = None, calls_url: str = "") -> str:
    data = {"bot": slug, "u": user_id, "n": secrets.token_urlsafe(12)}
    if calls_url:  # signed with the rest: the page never links where the admin did not say
        data["c"] = calls_url
    return signing.dumps(data, salt=SALT)


def check(token: str, slug: str) -> CallTicket:
    try:
        data = signing.loads(token or "", salt=SALT, max_age=MAX_AGE_SEC)
    except signing.SignatureExpired as exc:
        raise BadCallToken("the test-call link has expired; open it again from the bot's admin page") from exc
    except signing.BadSignature as exc:
        raise BadCallToken("missing or invalid test-call token") from exc
    if data.get("bot") != slug:
        raise BadCallToken("this test-call link is for another bot")
    return CallTicket(bot=slug, user_id=data.get("u"), nonce=data.get("n", ""),
                      calls_url=_admin_url(str(data.get("c") or "")))


def user_may_call(ticket: CallTicket, company_id: int) -> bool:
    """The ticket's user is still active staff who may see the bot's company (one query)."""
    from django.contrib.auth import get_user_model

    from voicebot.models import Company

    user = get_user_model().objects.filter(pk=ticket.user_id, is_active=True, is_staff=True).first()
    return user is not None and Company.objects.for_user(user).filter(pk=company_id).exists()


def call_page_url(slug: str, user_id: int | None = None, calls_url: str = "") -> str:
    """The runner's call page for ``slug``, on the runner the staff's browser reaches (``RUNNER_CALL_PAGE_URL``:
    the public runner URL in production, the runner ``manage.py demo`` started in the demo)."""
    base = getattr(settings, "RUNNER_CALL_PAGE_URL", "") or settings.RUNNER_PUBLIC_URL
    return f"{base.rstrip('/')}/call/{slug}?{urlencode({'token': sign(slug, user_id, calls_url)})}"
