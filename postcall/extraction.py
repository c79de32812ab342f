"""Deterministic reading of a call: contact fields, intent, booking.

The scenario engine's collected fields come first; rules on what the caller
said fill what it left out. The language model may add fields later
(``summary.llm_fields``), but only values grounded in the transcript.
Each value is stored with its source.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from postcall.models import Source
from voicebot.models import Call, CallTurn

EMAIL_RE = re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b")
# A run of digits with common separators, 7-15 digits long.
PHONE_RE = re.compile(r"(?<![\w+])(\+?\d[\d ().-]{5,20}\d)(?!\w)")
NAME_RE = re.compile(
    r"\b(?:my name is|my name's|this is|i am|i'm|call me)\s+([A-Z][a-z]+(?:\s+[A-Z][a-z]+)?)", re.IGNORECASE
)
NOT_NAMES = {"calling", "looking", "interested", "here", "just", "not", "sorry", "trying", "wondering", "good",
             "fine", "ok", "okay", "a", "the", "very", "so", "still", "going", "available"}

# Intent -> keywords heard in the caller's words (first match in this order wins).
INTENT_KEYWORDS: dict[str, tuple[str, ...]] = {
    "cancellation": ("cancel", "reschedule", "move my appointment"),
    "booking": ("book", "appointment", "reserve", "reservation", "schedule", "available", "slot"),
    "pricing": ("price", "cost", "how much", "fee", "quote", "expensive", "cheap"),
    "complaint": ("complain", "complaint", "unhappy", "refund", "terrible", "disappointed"),
    "support": ("question", "help", "problem", "issue", "open", "hours", "address", "where are you"),
}


@dataclass
class Extraction:
    fields: dict[str, dict] = field(default_factory=dict)  # name -> {"value", "source"}
    intent: str = ""
    intent_source: str = ""
    booking: dict | None = None

    def set(self, name: str, value, source: str) -> None:
        if value in (None, "") or name in self.fields:
            return
        self.fields[name] = {"value": value, "source": source}

    def value(self, name: str):
        item = self.fields.get(name)
        return item["value"] if item else None


def caller_text(turns: list[CallTurn]) -> str:
    return "\n".join(t.text for t in turns if t.role == CallTurn.Role.CALLER and t.text)


def digits_of(text: str) -> str:
    return re.sub(r"\D", "", text)


def find_phone(text: str) -> str | None:
    for match in PHONE_RE.finditer(text):
        raw = match.group(1)
        digits = digits_of(raw)
        if re.fullmatch(r"\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}", raw):
            continue  # a date, not a number
        if 7 <= len(digits) <= 15:
            return ("+" if raw.startswith("+") else "") + digits
    return None


def find_email(text: str) -> str | None:
    match = EMAIL_RE.search(text)
    return match.group(0).lower() if match else None


def find_name(text: str) -> str | None:
    for match in NAME_RE.finditer(text):
        words = match.group(1).split()
        if words[0].lower() in NOT_NAMES:
            continue
        words = [w for w in words if w.lower() not in NOT_NAMES]
        return " ".join(w.capitalize() for w in words)
    return None


def keyword_intent(text: str) -> str | None:
    lowered = text.lower()
    for intent, keywords in INTENT_KEYWORDS.items():
        if any(re.search(r"\b" + re.escape(k), lowered) for k in keywords):
            return intent
    return None


def field_schema(bot) -> list[dict]:
    """The bot's fields (from its scenarios' collect_fields), each once, first definition wins."""
    schema: dict[str, dict] = {}
    for scenario in (bot.scenarios if bot else None) or []:
        for item in scenario.get("collect_fields", []):
            schema.setdefault(item["name"], {**item, "scenario": scenario["name"]})
    return list(schema.values())


def scenario_by_name(bot, name: str) -> dict | None:
    for scenario in (bot.scenarios if bot else None) or []:
        if scenario.get("name") == name:
            return scenario
    return None


def booking_from(call: Call, extraction: Extraction) -> dict | None:
    """A booking when a scenario whose on_complete creates one got all its required fields."""
    scenario = scenario_by_name(call.bot, call.scenario) if call.scenario else None
    if not scenario or "booking" not in scenario.get("on_complete", ""):
        return None
    wanted = scenario.get("collect_fields", [])
    if any(f.get("required", True) and extraction.value(f["name"]) in (None, "") for f in wanted):
        return None
    values = {f["name"]: extraction.value(f["name"]) for f in wanted if extraction.value(f["name"]) is not None}
    return {"scenario": scenario["name"], **values}


def extract(call: Call, turns: list[CallTurn]) -> Extraction:
    result = Extraction()
    for name, value in (call.collected_fields or {}).items():
        result.set(name, value, Source.SCENARIO)
    text = caller_text(turns)
    schema = {item["name"]: item for item in field_schema(call.bot)}
    typed = {"phone": find_phone(text), "email": find_email(text)}
    # Fields of the bot's schema that rules can read, by type (or by the name itself).
    for name, item in schema.items():
        kind = item.get("type", "text")
        if kind in typed or name in typed:
            result.set(name, typed.get(kind) or typed.get(name), Source.TRANSCRIPT)
    result.set("phone", typed["phone"], Source.TRANSCRIPT)
    result.set("email", typed["email"], Source.TRANSCRIPT)
    result.set("name", find_name(text), Source.TRANSCRIPT)
    if call.scenario:
        result.intent, result.intent_source = call.scenario, Source.SCENARIO
    elif intent := keyword_intent(text):
        result.intent, result.intent_source = intent, Source.TRANSCRIPT
    elif text:
        result.intent, result.intent_source = "other", Source.TRANSCRIPT
    result.booking = booking_from(call, result)
    return result
