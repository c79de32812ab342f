"""Phone numbers typed by staff or uploaded in a list: E.164, read in the company's country."""

from __future__ import annotations

import phonenumbers


class BadPhoneNumber(ValueError):
    """Not a valid phone number; the message says what was wrong with it."""


def to_e164(raw: str, *, country: str = "US") -> str:
    """``raw`` ("(212) 555-0199", "+44 20 7946 0018", "0049 30 ...") as E.164, or ``BadPhoneNumber``."""
    text = (raw or "").strip()
    if not text:
        raise BadPhoneNumber("empty phone number")
    if text.startswith("00"):
        text = "+" + text[2:]
    try:
        number = phonenumbers.parse(text, (country or "US").upper())
    except phonenumbers.NumberParseException as exc:
        raise BadPhoneNumber(f"{raw!r} is not a phone number ({exc})") from None
    if not phonenumbers.is_valid_number(number):
        raise BadPhoneNumber(f"{raw!r} is not a valid phone number in {country or 'US'}")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
