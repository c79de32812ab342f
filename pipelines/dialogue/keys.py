"""Keypad input (DTMF) for the dialogue engine: typed digits as a field's value, a menu's keys.

Pure Python, like the engine. One keypad *entry* is the keys pressed up to ``#`` (or a
pause of ``keypad_timeout`` seconds); ``*`` starts it over. ``entry_of("12*34#")`` is
"34". The engine gets the entry without its ``#`` (``DialogueEngine.handle_keys``).
"""

from __future__ import annotations

import re

from pipelines.dialogue import normalize
from pipelines.dialogue.normalize import Parsed

DEFAULT_TIMEOUT = 3.0  # seconds without a key that end an entry (a field or menu may set keypad_timeout)
END_KEY, CLEAR_KEY = "#", "*"
# Speech that names a menu key: "one", "2", "press two", "option 3, please".
SPOKEN_KEY_RE = re.compile(r"^\W*(?:(?:press|pressing|option|number|key|dial)\s+)?([a-z]+|\d{1,4})\W*"
                           r"(?:please|thanks)?\W*$", re.IGNORECASE)


def entry_of(keys: str) -> str:
    """The digits of one entry as typed: ``*`` clears what came before it, ``#`` and anything else go."""
    return re.sub(r"[^0-9]", "", keys.rsplit(CLEAR_KEY, 1)[-1])


def parse_keys(field: dict, digits: str, *, country: str) -> Parsed | None:
    """Typed digits as the value of a keypad field, or None if they are no such value.

    phone: E.164 in the company's country ("0301234567" in DE -> "+49301234567"; "00" starts an
    international number); number: the number; text: the digits as typed (a reference, a PIN),
    read back one by one; choice: key N picks the Nth choice (the prompt says which is which).
    """
    if not digits.isdigit():
        return None
    kind = field.get("type", "text")
    if kind == "phone":
        return normalize.parse_phone(digits, country=country)
    if kind == "number":
        return Parsed(int(digits), str(int(digits)))
    if kind == "choice":
        values = normalize.choice_values(field)
        index = int(digits)
        return Parsed(values[index - 1], values[index - 1]) if 1 <= index <= len(values) else None
    return Parsed(digits, " ".join(digits))


def complete(digits: str, *, field: dict | None = None, menu: dict | None = None) -> bool:
    """Whether an entry cannot go on: a menu key no longer key starts with, a choice key of one digit.
    Such an entry is answered at once, without waiting for ``#`` or the timeout."""
    if menu is not None:
        keys = menu.get("keys") or {}
        return digits in keys and not any(k != digits and k.startswith(digits) for k in keys)
    if field is not None and field.get("type") == "choice":
        return len(normalize.choice_values(field)) <= 9 and len(digits) == 1
    return False


def spoken_key(text: str, menu: dict) -> str | None:
    """The menu key an utterance names ("one", "press 2"), or None: a caller may say the key."""
    found = SPOKEN_KEY_RE.match(normalize.clean(text) or text)
    if not found:
        return None
    word = found.group(1).lower()
    digits = word if word.isdigit() else normalize.spoken_digits(word)
    return digits if digits in (menu.get("keys") or {}) else None


def start_menu(scenarios: list[dict]) -> dict | None:
    """The menu scenario open from the greeting on (``menu.at_start``), if any."""
    return next((s for s in scenarios if (s.get("menu") or {}).get("at_start")), None)
