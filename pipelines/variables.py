"""``{{name}}`` variables: an outbound call's (or campaign contact's) values in the bot's texts.

Filled into the greeting, the system prompt, the voicemail message and every text of the
scenarios (prompts, confirmations, messages) once, when the call's ``BotConfig`` is read.
A name the call has no value for becomes empty: a caller must never hear "curly brace name".
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

VARIABLE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


def fill(text: str, variables: Mapping[str, str]) -> str:
    if "{{" not in text:
        return text
    return VARIABLE.sub(lambda match: str(variables.get(match.group(1), "") or ""), text)


def fill_all(value: Any, variables: Mapping[str, str]) -> Any:
    """Every string inside a JSON value (scenarios) filled; keys and other values as they are."""
    if isinstance(value, str):
        return fill(value, variables)
    if isinstance(value, dict):
        return {key: fill_all(item, variables) for key, item in value.items()}
    if isinstance(value, list):
        return [fill_all(item, variables) for item in value]
    return value


def names_in(text: str) -> set[str]:
    return set(VARIABLE.findall(text or ""))
