"""The runner's URLs for a call the platform places: where the provider fetches its answer
document once the callee picks up, and where it posts the call's status.

Both carry a signed reference to the placed ``Call`` (``call_ref``): the provider's own
signature proves the request came from the provider; the reference proves the platform
placed that call (a provider account shared with other apps cannot start a bot's call).
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.conf import settings
from django.core import signing

SALT = "voicebot.outbound-call"
MAX_AGE_SEC = 24 * 3600  # a status callback may come long after the call was placed


class BadCallRef(ValueError):
    """A missing, forged or expired reference to a placed call."""


def call_ref(call_id: int) -> str:
    return signing.dumps({"call": call_id}, salt=SALT)


def read_call_ref(ref: str) -> int:
    try:
        return int(signing.loads(ref or "", salt=SALT, max_age=MAX_AGE_SEC)["call"])
    except signing.SignatureExpired:
        raise BadCallRef("the call reference has expired") from None
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        raise BadCallRef("no valid call reference: this call was not placed by this platform") from None


def runner_url(path: str, call_id: int) -> str:
    return f"{settings.RUNNER_PUBLIC_URL.rstrip('/')}{path}?{urlencode({'call': call_ref(call_id)})}"
