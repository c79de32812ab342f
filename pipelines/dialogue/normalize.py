"""Turning a caller's words into field values: phone, date, time, email, number, choice, text.

Every parser takes the raw answer (as transcribed or typed) and returns a
``Parsed`` (the stored value and how to say it back) or ``None`` when the
answer does not fit. ``find_*`` helpers look for a value inside a longer
sentence ("can I come Friday at 4?"), for filling fields ahead of time.

Rules worth knowing (documented for staff in the README):

- Phone: spoken digits ("two one two", "double five", "oh") are read as digits;
  a number without a country code is read in the company's country; stored as E.164.
- Date: relative to *today in the company's time zone*. A bare weekday
  ("Friday", "this Friday") is the next such day, today included; "next Friday"
  is the first Friday strictly after today. "11/28" is month/day in the US and
  Canada, day/month elsewhere. A day and month already past means next year.
- Time: a business rule for a missing am/pm: 1 to 6 o'clock mean the afternoon
  (13:00-18:59), 7 to 11 the morning, 12 noon. "am"/"pm", "in the morning",
  "in the evening" and 24-hour times ("16:30") win over the rule.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, Callable

import phonenumbers


@dataclass(frozen=True)
class Parsed:
    value: Any  # what is stored and sent (ISO date, "16:30", E.164, ...)
    spoken: str  # how the bot reads it back


# --- words to numbers ------------------------------------------------------------

UNITS = {
    "zero": 0, "oh": 0, "o": 0, "nought": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5,
    "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12,
    "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18,
    "nineteen": 19,
}
TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80,
        "ninety": 90}
ORDINALS = {
    "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7, "eighth": 8,
    "ninth": 9, "tenth": 10, "eleventh": 11, "twelfth": 12, "thirteenth": 13, "fourteenth": 14,
    "fifteenth": 15, "sixteenth": 16, "seventeenth": 17, "eighteenth": 18, "nineteenth": 19,
    "twentieth": 20, "thirtieth": 30,
}
ORDINALS.update({f"{tens} {unit}": TENS[tens] + value for tens in ("twenty", "thirty")
                 for unit, value in list(ORDINALS.items()) if value <= 9 and " " not in unit})
DIGIT_WORDS = {k: v for k, v in UNITS.items() if v <= 9}


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+(?:[:.'][0-9a-z]+)*", text.lower().replace("-", " "))


def words_to_number(text: str) -> float | None:
    """ "twenty five" -> 25, "3.5" -> 3.5, "a hundred and two" -> 102; None if no number."""
    text = text.lower().strip()
    found = re.search(r"-?\d+(?:[.,]\d+)?", text)
    if found:
        return float(found.group().replace(",", "."))
    total, current, seen = 0, 0, False
    for word in _words(text):
        if word in UNITS:
            current += UNITS[word]
            seen = True
        elif word in TENS:
            current += TENS[word]
            seen = True
        elif word == "hundred":
            current = max(current, 1) * 100
            seen = True
        elif word == "thousand":
            total += max(current, 1) * 1000
            current = 0
            seen = True
        elif word in ("a", "and") and not seen:
            continue
        elif seen and word not in ("and",):
            break
    return float(total + current) if seen else None


def parse_number(text: str, **_) -> Parsed | None:
    number = words_to_number(text)
    if number is None:
        return None
    value = int(number) if number == int(number) else number
    return Parsed(value, str(value))


# --- phone -----------------------------------------------------------------------

def spoken_digits(text: str) -> str:
    """Digits of a spoken or typed phone number: "double five oh one" -> "5501"; keeps a leading +."""
    out: list[str] = []
    repeat = 1
    lowered = text.lower().replace("-", " ")
    if re.match(r"^\s*(\+|plus\b)", lowered):
        out.append("+")
    for token in re.findall(r"\d+|[a-z]+", lowered):
        if token.isdigit():
            out.append(token * repeat if repeat > 1 and len(token) == 1 else token)
            repeat = 1
        elif token in ("double", "triple"):
            repeat = 2 if token == "double" else 3
        elif token in DIGIT_WORDS:
            out.append(str(DIGIT_WORDS[token]) * repeat)
            repeat = 1
    return "".join(out)


def parse_phone(text: str, *, country: str = "US", **_) -> Parsed | None:
    digits = spoken_digits(text)
    if len(digits.lstrip("+")) < 6:
        return None
    if not digits.startswith("+") and digits.startswith("00"):
        digits = "+" + digits[2:]
    try:
        number = phonenumbers.parse(digits, country or "US")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    spoken = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    return Parsed(e164, spoken)


# --- email -----------------------------------------------------------------------

EMAIL_RE = re.compile(r"^[a-z0-9._%+\-]+@[a-z0-9\-]+(\.[a-z0-9\-]+)*\.[a-z]{2,}$")


def parse_email(text: str, **_) -> Parsed | None:
    candidate = text.strip().lower().rstrip(".!?")
    found = re.search(r"[a-z0-9._%+\-]+@[a-z0-9.\-]+\.[a-z]{2,}", candidate)
    if found:
        candidate = found.group()
    else:
        # Spoken form: "anna dot smith at example dot com".
        spoken = re.sub(r"^(it'?s|my email is|email is|the email is)\s+", "", candidate)
        spoken = re.sub(r"\s+(at)\s+", "@", spoken)
        spoken = re.sub(r"\s+(dot|point)\s+", ".", spoken)
        spoken = re.sub(r"\s+(underscore)\s+", "_", spoken)
        spoken = re.sub(r"\s+(dash|hyphen)\s+", "-", spoken)
        candidate = spoken.replace(" ", "")
    if not EMAIL_RE.match(candidate):
        return None
    return Parsed(candidate, candidate.replace("@", " at ").replace(".", " dot "))


# --- date ------------------------------------------------------------------------

WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
MONTHS = ["january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
          "november", "december"]
MONTH_RE = (r"(jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|"
            r"oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)")
DAY_RE = r"(\d{1,2}|" + "|".join(sorted(ORDINALS, key=len, reverse=True)) + r")(?:st|nd|rd|th)?"
DAY_FIRST_COUNTRIES_EXCEPT = {"US", "CA", "PH"}


def _month(token: str) -> int:
    token = token.lower()[:3]
    return next(i + 1 for i, m in enumerate(MONTHS) if m.startswith(token))


def _day(token: str) -> int:
    token = token.lower()
    token = re.sub(r"(st|nd|rd|th)$", "", token) if token[0].isdigit() else token
    return int(token) if token.isdigit() else ORDINALS[token]


def _future(today: date, month: int, day: int) -> date | None:
    try:
        candidate = date(today.year, month, day)
    except ValueError:
        return None
    if candidate < today:
        try:
            candidate = date(today.year + 1, month, day)
        except ValueError:
            return None
    return candidate


def find_date(text: str, *, today: date, country: str = "US") -> date | None:
    """The first date expression in ``text``, or None."""
    t = " " + text.lower().replace(",", " ") + " "
    if m := re.search(r"\b(\d{4})-(\d{2})-(\d{2})\b", t):
        try:
            return date(int(m[1]), int(m[2]), int(m[3]))
        except ValueError:
            return None
    if re.search(r"\bday after tomorrow\b", t):
        return today + timedelta(days=2)
    if re.search(r"\b(today|tonight|this (morning|afternoon|evening))\b", t):
        return today
    if re.search(r"\btomorrow\b", t):
        return today + timedelta(days=1)
    if m := re.search(r"\bin (a|one|two|three|four|five|six|seven|\d+) (day|days|week|weeks)\b", t):
        count = 1 if m[1] in ("a", "one") else int(words_to_number(m[1]) or 1)
        return today + timedelta(days=count * (7 if m[2].startswith("week") else 1))
    if m := re.search(r"\b(next|this|coming)?\s*(" + "|".join(WEEKDAYS) + r")\b", t):
        target = WEEKDAYS.index(m[2])
        ahead = (target - today.weekday()) % 7
        if m[1] == "next" and ahead == 0:
            ahead = 7
        return today + timedelta(days=ahead)
    if m := re.search(r"\bnext week\b", t):
        return today + timedelta(days=7 - today.weekday())  # the Monday of next week
    if m := re.search(rf"\b{MONTH_RE}\s+(?:the\s+)?{DAY_RE}\b", t):
        return _future(today, _month(m[1]), _day(m[2]))
    if m := re.search(rf"\b(?:the\s+)?{DAY_RE}\s+(?:of\s+)?{MONTH_RE}\b", t):
        return _future(today, _month(m[2]), _day(m[1]))
    if m := re.search(r"\b(\d{1,2})[/.](\d{1,2})(?:[/.](\d{2,4}))?\b", t):
        a, b = int(m[1]), int(m[2])
        month, day = (a, b) if (country or "US").upper() in DAY_FIRST_COUNTRIES_EXCEPT else (b, a)
        if m[3]:
            year = int(m[3]) + (2000 if len(m[3]) == 2 else 0)
            try:
                return date(year, month, day)
            except ValueError:
                return None
        return _future(today, month, day)
    if m := re.search(rf"\bthe\s+{DAY_RE}\b", t):
        day = _day(m[1])
        candidate = _future(today, today.month, day)
        if candidate is None or candidate.month != today.month and candidate < today:
            return None
        if day < today.day:  # "the 3rd" said on the 20th: next month
            month, year = (today.month % 12) + 1, today.year + (today.month == 12)
            try:
                return date(year, month, day)
            except ValueError:
                return None
        return candidate
    return None


def speak_date(value: date) -> str:
    return f"{WEEKDAYS[value.weekday()].capitalize()}, {MONTHS[value.month - 1].capitalize()} {value.day}"


def parse_date(text: str, *, today: date, country: str = "US", **_) -> Parsed | None:
    found = find_date(text, today=today, country=country)
    if found is None or found < today:
        return None
    return Parsed(found.isoformat(), speak_date(found))


# --- time ------------------------------------------------------------------------

HOUR_WORDS = {k: v for k, v in UNITS.items() if 1 <= v <= 12}
HOUR_RE = r"(\d{1,2}|" + "|".join(sorted(HOUR_WORDS, key=len, reverse=True)) + r")"
MINUTE_WORDS = {"oh five": 5, "o five": 5, "ten": 10, "fifteen": 15, "twenty": 20, "twenty five": 25,
                "thirty": 30, "forty": 40, "forty five": 45, "fifty": 50, "fifty five": 55}
MINUTE_RE = r"(\d{2}|" + "|".join(sorted(MINUTE_WORDS, key=len, reverse=True)) + r")"


def _hour(token: str) -> int:
    return int(token) if token.isdigit() else HOUR_WORDS[token]


def _business_hour(hour: int, meridiem: str | None) -> int:
    """Apply am/pm, or the business rule when none was said (see module doc)."""
    if hour > 12:
        return hour
    if meridiem == "pm":
        return hour if hour == 12 else hour + 12
    if meridiem == "am":
        return 0 if hour == 12 else hour
    if 1 <= hour <= 6:
        return hour + 12
    return hour


def _meridiem(text: str) -> str | None:
    if re.search(r"\b(p\.?\s?m\.?|in the (afternoon|evening)|at night|tonight|this (afternoon|evening))(?=\W|$)", text):
        return "pm"
    if re.search(r"\b(a\.?\s?m\.?|in the morning|this morning)(?=\W|$)", text):
        return "am"
    return None


def find_time(text: str, *, strict: bool = False) -> time | None:
    """The first clock time in ``text``, or None.

    ``strict``: a bare number counts only with "at"/"o'clock"/am/pm (for times picked
    out of a longer sentence, where "November 5" must not become 17:00).
    """
    t = " " + text.lower().replace("-", " ").replace("o'clock", "oclock") + " "
    meridiem = _meridiem(t)
    if re.search(r"\b(noon|midday)\b", t):
        return time(12, 0)
    if m := re.search(r"\b(half past|half after|quarter past|quarter after|quarter to|quarter of|"
                      r"(\w+(?: \w+)?) (?:minutes )?(?:past|after|to))\s+" + HOUR_RE + r"\b", t):
        hour = _business_hour(_hour(m[3]), meridiem)
        phrase = m[1]
        if phrase.startswith("half"):
            return time(hour, 30)
        if phrase.startswith("quarter"):
            return time(hour, 15) if ("past" in phrase or "after" in phrase) else time((hour - 1) % 24, 45)
        minutes = words_to_number(m[2] or "")
        if minutes is None or not 0 < minutes < 60:
            return None
        if phrase.endswith("to"):
            return time((hour - 1) % 24, 60 - int(minutes))
        return time(hour, int(minutes))
    if m := re.search(r"\b(\d{1,2})[:.](\d{2})\b", t):
        hour, minute = int(m[1]), int(m[2])
        if hour > 23 or minute > 59:
            return None
        return time(_business_hour(hour, meridiem) if hour <= 12 else hour, minute)
    if not strict and (m := re.search(r"\b" + HOUR_RE + r"\s+" + MINUTE_RE + r"\b", t)):
        hour = _hour(m[1])
        minute = int(m[2]) if m[2].isdigit() else MINUTE_WORDS[m[2]]
        if minute < 60:
            return time(_business_hour(hour, meridiem), minute)
    if m := re.search(r"\b" + HOUR_RE + r"\s*(oclock|a\.?\s?m\.?|p\.?\s?m\.?)?(?=\W|$)", t):
        hour = _hour(m[1])
        if hour > 23:
            return None
        # A bare number counts as a time only when the sentence is short or says "at".
        said_at = re.search(r"\b(at|around|about|by)\s+" + re.escape(m[1]) + r"\b", t)
        if m[2] or meridiem or said_at or (not strict and len(_words(t)) <= 3):
            return time(_business_hour(hour, meridiem), 0)
    return None


def speak_time(value: time) -> str:
    hour = value.hour % 12 or 12
    suffix = "AM" if value.hour < 12 else "PM"
    return f"{hour}:{value.minute:02d} {suffix}" if value.minute else f"{hour} {suffix}"


def parse_time(text: str, **_) -> Parsed | None:
    found = find_time(text)
    if found is None:
        return None
    return Parsed(found.strftime("%H:%M"), speak_time(found))


# --- choice and text -------------------------------------------------------------

def parse_choice(text: str, *, options: list[str] | tuple = (), **_) -> Parsed | None:
    lowered = " " + " ".join(_words(text)) + " "
    for option in options:
        if f" {' '.join(_words(option))} " in lowered:
            return Parsed(option, option)
    for word, index in ORDINALS.items():
        if re.search(rf"\b(the )?{word}( one)?\b", lowered) and index <= len(options):
            return Parsed(options[index - 1], options[index - 1])
    # Partial: every word of the answer's main noun appears in one option only.
    matches = [o for o in options if any(w in _words(text) for w in _words(o) if len(w) > 3)]
    if len(matches) == 1:
        return Parsed(matches[0], matches[0])
    return None


LEAD_INS = re.compile(
    r"^(?:um+|uh+|er+|well|so|and|yes|yeah|okay|ok|hi|hello|i'?d like to (?:get|have|book)|i'?d like|"
    r"i would like to (?:get|have|book)|i would like|i want to (?:get|have|book)|i want|i need|"
    r"can i (?:get|have|book)|could i (?:get|have|book)|it'?s|it is|my \w+ is|just|an?|the|some)\b[\s,.]*",
    re.IGNORECASE,
)


def parse_text(text: str, **_) -> Parsed | None:
    """Free text, without lead-ins and politeness: "I'd like a manicure, please" -> "manicure"."""
    cleaned = text.strip()
    while (stripped := LEAD_INS.sub("", cleaned, count=1)) != cleaned:
        cleaned = stripped
    cleaned = re.sub(r"[\s,]*(please|thanks|thank you)[.!]*$", "", cleaned, flags=re.IGNORECASE).strip(" .!?,")
    if not cleaned:
        cleaned = text.strip(" .!?,")
    if not cleaned:
        return None
    return Parsed(cleaned, cleaned)


PARSERS: dict[str, Callable[..., Parsed | None]] = {
    "text": parse_text,
    "phone": parse_phone,
    "date": parse_date,
    "time": parse_time,
    "email": parse_email,
    "number": parse_number,
    "choice": parse_choice,
}

DEFAULT_HINTS = {
    "phone": "Please say the whole number with the area code, digit by digit.",
    "date": "You can say a day like tomorrow, Friday, or November 28.",
    "time": "You can say a time like 10 in the morning or half past four.",
    "email": "Please spell it like anna at example dot com.",
    "number": "Please say a number.",
    "text": "Please say it in a few words.",
}


def parse_field(field: dict, text: str, *, today: date, country: str) -> Parsed | None:
    """Parse ``text`` as the value of a scenario field (its dict from the validated config)."""
    parser = PARSERS[field.get("type", "text")]
    return parser(text, today=today, country=country, options=list(field.get("options") or ()))


def hint_for(field: dict) -> str:
    if field.get("hint"):
        return field["hint"]
    if field.get("type") == "choice":
        return "Please choose one of: " + ", ".join(field.get("options") or ()) + "."
    return DEFAULT_HINTS.get(field.get("type", "text"), DEFAULT_HINTS["text"])


def today_in(timezone_name: str, now: datetime | None = None) -> date:
    """Today's date in a company's time zone."""
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(timezone_name or "UTC")
    return (now.astimezone(zone) if now else datetime.now(zone)).date()
