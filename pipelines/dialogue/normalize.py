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
- Choice: a field's ``choices`` (with synonyms) are matched word by word with
  spelling similarity (difflib) and a Metaphone sound key, so Whisper's "Joe
  manicure" is a gel manicure and "petty cure" a pedicure; the longest choice said wins.
- Fillers ("um", "you know", a filler "like", repeated words) are dropped first
  (``clean``), and after a self-correction ("Friday, no, Saturday", "at four...
  sorry, five") the last value said wins (``answer_pieces``).
- Free text refuses an answer that is only a phone number, date or time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from difflib import SequenceMatcher
from functools import lru_cache
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


def find_phone_span(text: str, *, country: str = "US") -> tuple[Parsed, tuple[int, int]] | None:
    """A valid phone number said inside a longer sentence, and where it is.

    Runs of digits and digit words ("two one two", "double five", "oh") are tried,
    longest valid stretch first, so "at 4, 718 555 0142" finds the number without the 4;
    of two numbers equally long the last one said wins.
    """
    lowered = text.lower()
    runs: list[list[re.Match]] = []
    current: list[re.Match] = []
    for m in re.finditer(r"\+|\d+|[a-z']+|[^\s\w]", lowered):
        token = m.group()
        if token.isdigit() or token in DIGIT_WORDS or token in ("double", "triple"):
            current.append(m)
        elif token in ("+", "plus"):
            if current:
                runs.append(current)
            current = [m]
        elif len(token) == 1 and token in "()-.,/" and current:
            continue  # separators inside a number
        elif current:
            runs.append(current)
            current = []
    if current:
        runs.append(current)
    best: tuple[tuple[int, int], Parsed, tuple[int, int]] | None = None
    for run in runs:
        if len(spoken_digits(text[run[0].start():run[-1].end()]).lstrip("+")) < 7:
            continue
        for i in range(len(run)):
            for j in range(len(run), i, -1):
                piece = text[run[i].start():run[j - 1].end()]
                digits = spoken_digits(piece).lstrip("+")
                if not 7 <= len(digits) <= 15:
                    continue
                parsed = parse_phone(piece, country=country)
                if parsed is None:
                    continue
                rank = (len(digits), run[i].start())
                if best is None or rank > best[0]:
                    best = (rank, parsed, (run[i].start(), run[j - 1].end()))
                break
    return (best[1], best[2]) if best else None


def parse_phone_answer(text: str, *, country: str = "US", **_) -> Parsed | None:
    """A phone number given as an answer: the number inside the sentence, else all its digits."""
    found = find_phone_span(text, country=country)
    return found[0] if found else parse_phone(text, country=country)


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
    found = find_date_span(text, today=today, country=country)
    return found[0] if found else None


def find_date_span(text: str, *, today: date, country: str = "US") -> tuple[date, tuple[int, int]] | None:
    """The first date expression in ``text`` and where it is (``text[start:end]``), or None."""
    t = " " + text.lower().replace(",", " ") + " "
    if len(t) != len(text) + 2:  # lower() changed the length (rare letters): no usable positions
        t = " " + re.sub(r"[^\x00-\x7f]", "?", text).lower().replace(",", " ") + " "
    value, match = _date_in(t, today, country)
    if match is None or value is None:
        return None
    start, end = match.span()
    return value, (max(0, start - 1), max(0, min(len(text), end - 1)))


def _date_in(t: str, today: date, country: str) -> tuple[date | None, re.Match | None]:
    if m := re.search(r"\b(\d{4})-(\d{2})-(\d{2})\b", t):
        try:
            return date(int(m[1]), int(m[2]), int(m[3])), m
        except ValueError:
            return None, None
    if m := re.search(r"\b(the )?day after tomorrow\b", t):
        return today + timedelta(days=2), m
    if m := re.search(r"\b(today|tonight|this (morning|afternoon|evening))\b", t):
        return today, m
    if m := re.search(r"\btomorrow\b", t):
        return today + timedelta(days=1), m
    if m := re.search(r"\bin (a|one|two|three|four|five|six|seven|\d+) (day|days|week|weeks)\b", t):
        count = 1 if m[1] in ("a", "one") else int(words_to_number(m[1]) or 1)
        return today + timedelta(days=count * (7 if m[2].startswith("week") else 1)), m
    if m := re.search(r"\b(?:(next|this|coming)\s+)?(" + "|".join(WEEKDAYS) + r")\b", t):
        target = WEEKDAYS.index(m[2])
        ahead = (target - today.weekday()) % 7
        if m[1] == "next" and ahead == 0:
            ahead = 7
        return today + timedelta(days=ahead), m
    if m := re.search(r"\bnext week\b", t):
        return today + timedelta(days=7 - today.weekday()), m  # the Monday of next week
    if m := re.search(rf"\b{MONTH_RE}\s+(?:the\s+)?{DAY_RE}\b", t):
        return _future(today, _month(m[1]), _day(m[2])), m
    if m := re.search(rf"\b(?:the\s+)?{DAY_RE}\s+(?:of\s+)?{MONTH_RE}\b", t):
        return _future(today, _month(m[2]), _day(m[1])), m
    if m := re.search(r"\b(\d{1,2})[/.](\d{1,2})(?:[/.](\d{2,4}))?\b", t):
        a, b = int(m[1]), int(m[2])
        month, day = (a, b) if (country or "US").upper() in DAY_FIRST_COUNTRIES_EXCEPT else (b, a)
        if m[3]:
            year = int(m[3]) + (2000 if len(m[3]) == 2 else 0)
            try:
                return date(year, month, day), m
            except ValueError:
                return None, None
        return _future(today, month, day), m
    if m := re.search(rf"\bthe\s+{DAY_RE}\b", t):
        day = _day(m[1])
        candidate = _future(today, today.month, day)
        if candidate is None or candidate.month != today.month and candidate < today:
            return None, None
        if day < today.day:  # "the 3rd" said on the 20th: next month
            month, year = (today.month % 12) + 1, today.year + (today.month == 12)
            try:
                return date(year, month, day), m
            except ValueError:
                return None, None
        return candidate, m
    return None, None


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
    found = find_time_span(text, strict=strict)
    return found[0] if found else None


def find_time_span(text: str, *, strict: bool = False) -> tuple[time, tuple[int, int]] | None:
    """Like ``find_time``, with where the time is in ``text`` (``text[start:end]``)."""
    # Same length as ``text`` plus the two pads, so positions carry over.
    t = " " + re.sub(r"o['\u2019]clock", "oclock ", text.lower().replace("-", " ")) + " "
    if len(t) != len(text) + 2:
        t = " " + re.sub(r"o['\u2019]clock", "oclock ", re.sub(r"[^\x00-\x7f]", "?", text).lower()
                         .replace("-", " ")) + " "
    value, span = _time_in(t, strict)
    if value is None:
        return None
    return value, (max(0, span[0] - 1), max(0, min(len(text), span[1] - 1)))


def _time_in(t: str, strict: bool) -> tuple[time | None, tuple[int, int]]:
    meridiem = _meridiem(t)
    none = (None, (0, 0))
    if m := re.search(r"\b(noon|midday)\b", t):
        return time(12, 0), m.span()
    if m := re.search(r"\b(half past|half after|quarter past|quarter after|quarter to|quarter of|"
                      r"(\w+(?: \w+)?) (?:minutes )?(?:past|after|to))\s+" + HOUR_RE + r"\b", t):
        hour = _business_hour(_hour(m[3]), meridiem)
        phrase = m[1]
        if phrase.startswith("half"):
            return time(hour, 30), m.span()
        if phrase.startswith("quarter"):
            value = time(hour, 15) if ("past" in phrase or "after" in phrase) else time((hour - 1) % 24, 45)
            return value, m.span()
        minutes = words_to_number(m[2] or "")
        if minutes is None or not 0 < minutes < 60:
            return none
        if phrase.endswith("to"):
            return time((hour - 1) % 24, 60 - int(minutes)), m.span()
        return time(hour, int(minutes)), m.span()
    if m := re.search(r"\b(\d{1,2})[:.](\d{2})\b", t):
        hour, minute = int(m[1]), int(m[2])
        if hour > 23 or minute > 59:
            return none
        return time(_business_hour(hour, meridiem) if hour <= 12 else hour, minute), _with_meridiem(t, m)
    if not strict and (m := re.search(r"\b" + HOUR_RE + r"\s+" + MINUTE_RE + r"\b", t)):
        hour = _hour(m[1])
        minute = int(m[2]) if m[2].isdigit() else MINUTE_WORDS[m[2]]
        if minute < 60:
            return time(_business_hour(hour, meridiem), minute), _with_meridiem(t, m)
    for m in re.finditer(r"\b" + HOUR_RE + r"\s*(oclock|a\.?\s?m\.?|p\.?\s?m\.?)?(?=\W|$)", t):
        hour = _hour(m[1])
        if hour > 23:
            return none
        # A bare number counts as a time only when the sentence is short or says "at"
        # ("two kids haircuts at 9": the 9).
        said_at = re.search(r"\b(at|around|about|by)\s+" + re.escape(m[1]) + r"\b", t[:m.end(1)])
        said_at = said_at if said_at and said_at.end() == m.end(1) else None
        if m[2] or meridiem or said_at or (not strict and len(_words(t)) <= 3):
            start = said_at.start() if said_at else m.start()
            return time(_business_hour(hour, meridiem), 0), (start, _with_meridiem(t, m)[1])
    return none


def _with_meridiem(t: str, m: re.Match) -> tuple[int, int]:
    """The span of a time, with an am/pm or "in the morning" right after it."""
    after = re.match(r"\s*(a\.?\s?m\.?|p\.?\s?m\.?|in the (morning|afternoon|evening)|at night)(?=\W|$)", t[m.end():])
    return m.start(), m.end() + (after.end() if after else 0)


def speak_time(value: time) -> str:
    hour = value.hour % 12 or 12
    suffix = "AM" if value.hour < 12 else "PM"
    return f"{hour}:{value.minute:02d} {suffix}" if value.minute else f"{hour} {suffix}"


def parse_time(text: str, **_) -> Parsed | None:
    found = find_time(text)
    if found is None:
        return None
    return Parsed(found.strftime("%H:%M"), speak_time(found))


# --- what callers say around the answer: fillers, false starts, self-corrections -----

# Hesitations said as words, never part of an answer. "uh-huh" / "mm-hmm" (a yes) are kept.
FILLER_RE = re.compile(
    r"(?<![\w'-])(?:u+h*m+|u+h+|e+r+m+|e+r+|h+m+|m{2,}|a+h+|e+h+|you know|y'know|i guess|kinda|sorta)"
    r"(?![\w'-])[,.\u2026]*", re.IGNORECASE)
# "I wa- I want": a word cut off by the speaker (Whisper writes the hyphen).
CUTOFF_RE = re.compile(r"(?<![\w'-])[a-z]+-(?=\s)", re.IGNORECASE)
# "like" is kept after these words ("I'd like", "would you like", "something like") and dropped as a filler elsewhere.
LIKE_KEPT_AFTER = {
    "i", "i'd", "id", "we", "we'd", "you", "you'd", "they", "they'd", "he'd", "she'd", "would", "do", "don't",
    "dont", "really", "also", "should", "could", "might", "will", "i'll", "we'll", "not", "look", "looks", "feel",
    "feels", "sound", "sounds", "seem", "seems", "something", "anything", "more", "much", "just", "d",
}
NUMBER_WORDS = set(UNITS) | set(TENS) | {"double", "triple", "hundred", "thousand", "plus"}


def clean(text: str) -> str:
    """The caller's words without fillers and false starts.

    "um", "uh", "er", "you know", a filler "like" ("at like four"), a word cut off
    ("I wa- I want") and immediate repeats ("I I want", "a, a manicure", "I'd like to,
    I'd like to book") go; numbers are never de-duplicated ("five five five").
    Self-corrections ("sorry", "no", "I mean") are left for ``answer_pieces``.
    """
    t = (text or "").replace("\u2019", "'").replace("\u2026", "...")
    t = CUTOFF_RE.sub(" ", t)
    t = FILLER_RE.sub(" ", t)
    t = _drop_repeats(t)
    t = re.sub(r"(?i)\blike\b,?", lambda m: _keep_like(t, m), t)
    t = re.sub(r"\s+", " ", t)
    t = re.sub(r"\s+([,.;!?])", r"\1", t)
    t = re.sub(r"([,;])(?:\s*[,;])+", r"\1", t)
    t = re.sub(r"^[\s,.;:!?-]+", "", t)
    return t.strip()


def _keep_like(t: str, m: re.Match) -> str:
    before = re.findall(r"[\w']+", t[:m.start()].lower())
    return m.group() if before and before[-1] in LIKE_KEPT_AFTER else " "


def _drop_repeats(t: str) -> str:
    for _ in range(20):
        tokens = list(re.finditer(r"[\w']+", t))
        words = [m.group().lower() for m in tokens]
        cut = None
        for n in (3, 2, 1):
            for i in range(len(tokens) - 2 * n + 1):
                if words[i:i + n] != words[i + n:i + 2 * n]:
                    continue
                if any(w in NUMBER_WORDS or w.isdigit() for w in words[i:i + n]):
                    continue
                if not re.fullmatch(r"[\s,.-]*", t[tokens[i + n - 1].end():tokens[i + n].start()]):
                    continue
                cut = (tokens[i].start(), tokens[i + n].start())
                break
            if cut:
                break
        if cut is None:
            return t
        t = t[:cut[0]] + t[cut[1]:]
    return t


# Where a caller corrects themselves inside one answer: "Friday, no, Saturday", "at four... sorry,
# five", "double five five... sorry, it's 718 555 0142". A bare "no" counts only next to punctuation
# ("no idea" is not a correction), "actually"/"wait" only at a pause.
SELF_CORRECTION_RE = re.compile(
    r"(?:\b(?:sorry|i mean|i meant|or rather|scratch that|make that|make it|correction|oops)\b"
    r"|(?<=[,.;!?])\s*\b(?:no+|nope|actually|wait)\b|^\s*(?:actually|wait)\b|\b(?:no+|nope|actually|wait)\b(?=\s*[,.;!?]))"
    r"[\s,.;:!?]*(?:(?:it'?s|it is|that'?s|that is|i mean|i meant|make it|make that)\b[\s,]*)?",
    re.IGNORECASE)
NEGATED_RE = re.compile(r"[,;]\s*(?=not\b)", re.IGNORECASE)  # "Saturday, not Friday": the "not" part is no answer


def answer_pieces(text: str) -> list[tuple[int, int]]:
    """Where to look for the answer in ``text``, best first: the last thing said after a
    self-correction, then what came before it, then the whole text (as spans)."""
    cuts = [(m.start(), m.end()) for m in SELF_CORRECTION_RE.finditer(text)]
    pieces: list[tuple[int, int]] = []
    start = 0
    for cut_start, cut_end in cuts:
        pieces.append((start, cut_start))
        start = cut_end
    pieces.append((start, len(text)))
    spans: list[tuple[int, int]] = []
    for piece_start, piece_end in pieces:
        negated = NEGATED_RE.search(text, piece_start, piece_end)
        if negated:
            piece_end = negated.start()
        piece = text[piece_start:piece_end]
        if piece.strip(" ,.;:!?-"):
            spans.append((piece_start, piece_end))
    ordered = list(reversed(spans))
    if (0, len(text)) not in ordered:
        ordered.append((0, len(text)))
    return ordered


# --- choices ---------------------------------------------------------------------

# Every word of a choice must sound at least this close to what was said, and the whole
# choice (weighted by word length) at least CHOICE_MIN: "Joe manicure" is a gel manicure,
# "petty cure" a pedicure, "a manicure" not a gel manicure.
CHOICE_WORD_MIN = 0.7
CHOICE_MIN = 0.8
JOIN_MIN = 0.85  # words joined on either side ("hair cut", "petty cure") must be this close
# Common words never taken for a choice word unless said exactly ("get" is not "gel",
# "message" not "massage").
CHOICE_STOP = {
    "a", "an", "the", "to", "for", "of", "and", "or", "in", "on", "at", "by", "with", "me", "my", "i", "id", "im",
    "ill", "you", "your", "we", "it", "its", "is", "be", "am", "are", "was", "get", "got", "have", "ha", "had",
    "do", "did", "doe", "can", "could", "would", "will", "want", "wanna", "need", "like", "book", "booking",
    "please", "just", "some", "yes", "yeah", "no", "not", "so", "that", "this", "then", "than", "there", "here",
    "also", "too", "today", "tomorrow", "morning", "afternoon", "evening", "night", "next", "time", "day", "date",
    "number", "phone", "appointment", "come", "see", "make", "maybe", "well", "okay", "ok", "sure", "thank",
    "thanks", "hi", "hello", "hey", "message", "call", "name", "what", "which", "how", "when", "where", "one",
    "done", "again", "think", "guess", "know", "mean", "sorry", "actually", "wait", "right", "good", "great",
    "much", "more", "any", "all", "if", "but", "out", "up", "new", "our", "us", "she", "he", "her", "him",
    "they", "them", "their", "his", "let", "go", "going", "about", "around", "from", "week", "free", "slot",
    "somebody", "someone", "person", "people", "way", "thing", "stuff", "cost", "price", "open", "close",
    *WEEKDAYS, *MONTHS, *UNITS, *TENS,
}


@dataclass(frozen=True)
class ChoiceMatch:
    value: str  # the canonical choice
    score: float
    span: tuple[int, int]  # where it was said
    words: int  # how many words of the choice were matched (0: a partial or ordinal match)


def choices_of(field: dict) -> list[tuple[str, list[str]]]:
    """(value, [value, *synonyms]) for each choice of a field (``choices:`` or the older ``options:``)."""
    out = []
    for item in field.get("choices") or field.get("options") or ():
        if isinstance(item, dict):
            value, also = str(item["value"]), [str(a) for a in item.get("also") or ()]
        else:
            value, also = str(item), []
        out.append((value, [value, *also]))
    return out


def choice_values(field: dict) -> list[str]:
    return [value for value, _ in choices_of(field)]


def _singular(word: str) -> str:
    if len(word) > 4 and word.endswith(("ches", "shes", "xes", "sses", "zes")):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def _norm_word(word: str) -> str:
    word = word.lower().replace("\u2019", "'")
    word = word.removesuffix("'s")
    return _singular(word.replace("'", ""))


def _choice_tokens(text: str) -> list[tuple[str, int, int]]:
    return [(_norm_word(m.group()), m.start(), m.end())
            for m in re.finditer(r"[a-z0-9]+(?:['\u2019][a-z]+)?", text.lower())]


def metaphone(word: str) -> str:
    """A simple Metaphone key: words that sound alike get the same letters ("pettycure" and
    "pedicure" are both PTKR, "colour" and "color" KLR)."""
    w = re.sub(r"[^a-z]", "", word.lower())
    if not w:
        return ""
    if w[:2] in ("kn", "gn", "pn", "ae", "wr"):
        w = w[1:]
    if w[0] == "x":
        w = "s" + w[1:]
    if w[:2] == "wh":
        w = "w" + w[2:]
    vowels = "aeiou"
    out: list[str] = []
    n = len(w)
    for i, c in enumerate(w):
        prev = w[i - 1] if i else ""
        nxt = w[i + 1] if i + 1 < n else ""
        nxt2 = w[i + 2] if i + 2 < n else ""
        if c == prev and c != "c":
            continue
        if c in vowels:
            if i == 0:
                out.append("A")
        elif c == "b":
            if not (prev == "m" and i == n - 1):
                out.append("B")
        elif c == "c":
            if nxt == "h" or (nxt == "i" and nxt2 == "a"):
                out.append("K" if prev == "s" else "X")
            elif nxt in ("i", "e", "y"):
                if prev != "s":
                    out.append("S")
            else:
                out.append("K")
        elif c == "d":
            out.append("J" if nxt == "g" and nxt2 in ("e", "i", "y") else "T")
        elif c == "g":
            if nxt == "h" and nxt2 and nxt2 not in vowels:
                continue
            if nxt == "n" and i + 2 >= n:
                continue
            if prev == "d" and nxt in ("e", "i", "y"):
                continue
            out.append("J" if nxt in ("e", "i", "y") else "K")
        elif c == "h":
            if prev not in ("c", "s", "p", "t", "g") and nxt in vowels:
                out.append("H")
        elif c == "k":
            if prev != "c":
                out.append("K")
        elif c == "p":
            out.append("F" if nxt == "h" else "P")
        elif c == "q":
            out.append("K")
        elif c == "s":
            out.append("X" if nxt == "h" or (nxt == "i" and nxt2 in ("o", "a")) else "S")
        elif c == "t":
            if nxt == "i" and nxt2 in ("o", "a"):
                out.append("X")
            elif nxt == "h":
                out.append("0")
            elif not (nxt == "c" and nxt2 == "h"):
                out.append("T")
        elif c == "v":
            out.append("F")
        elif c == "w":
            if nxt in vowels:
                out.append("W")
        elif c == "x":
            out.append("KS")
        elif c == "y":
            if nxt in vowels:
                out.append("Y")
        elif c == "z":
            out.append("S")
        else:
            out.append(c.upper())
    key = "".join(out)
    return re.sub(r"(.)\1+", r"\1", key)


@lru_cache(maxsize=4096)
def word_similarity(said: str, choice: str) -> float:
    """How close a said word is to a choice word, 0 to 1: spelling (difflib) or sound (metaphone).

    Same sound counts 0.85 ("pettycure"/"pedicure"); the same sound but a dropped final L
    0.75 ("Joe"/"gel", as Whisper hears a soft g and a dark l).
    """
    if said == choice:
        return 1.0
    if said in CHOICE_STOP or not said:
        return 0.0
    ratio = SequenceMatcher(None, said, choice).ratio()
    if ratio >= 0.3:
        said_key, choice_key = metaphone(said), metaphone(choice)
        if said_key and said_key == choice_key:
            return max(ratio, 0.85)
        if said_key.rstrip("L") and said_key.rstrip("L") == choice_key.rstrip("L"):
            return max(ratio, 0.75)
    return ratio


def _align(said: list[str], choice: list[str]) -> float | None:
    """Similarity of said words to a choice's words, every part close enough; None if not.

    Words may be joined on either side ("hair cut" = "haircut", "pedi cure" = "pedicure").
    """
    n, m = len(said), len(choice)
    best: list[list[float | None]] = [[None] * (m + 1) for _ in range(n + 1)]
    best[0][0] = 0.0
    for i in range(n + 1):
        for j in range(m + 1):
            if best[i][j] is None:
                continue
            for di in (1, 2, 3):
                for dj in (1, 2):
                    if i + di > n or j + dj > m or (di > 1 and dj > 1):
                        continue
                    group = said[i:i + di]
                    if di > 1 and (group[0] in CHOICE_STOP or group[-1] in CHOICE_STOP):
                        continue
                    target = "".join(choice[j:j + dj])
                    sim = word_similarity("".join(group), target)
                    # A join must sound the same or be nearly spelt the same: "manicure" is not "gel manicure".
                    if sim < (JOIN_MIN if di > 1 or dj > 1 else CHOICE_WORD_MIN):
                        continue
                    total = best[i][j] + sim * len(target)
                    if best[i + di][j + dj] is None or total > best[i + di][j + dj]:
                        best[i + di][j + dj] = total
    if best[n][m] is None:
        return None
    score = best[n][m] / max(1, sum(len(w) for w in choice))
    return score if score >= CHOICE_MIN else None


def find_choice(text: str, choices: list[tuple[str, list[str]]], *, partial: bool = False) -> ChoiceMatch | None:
    """The choice said in ``text``, tolerant of mishearings, plurals and split words.

    The longest matching choice wins ("gel manicure" over "manicure"), then the closest.
    ``partial`` (answers to the choice's own question): a word of exactly one choice
    ("gel", "lash") or "the second one" also counts.
    """
    tokens = _choice_tokens(text)
    words = [t[0] for t in tokens]
    best: tuple[tuple, ChoiceMatch] | None = None
    for value, aliases in choices:
        for alias in aliases:
            target = [t[0] for t in _choice_tokens(alias)]
            if not target:
                continue
            for i in range(len(words)):
                if words[i] in CHOICE_STOP and words[i] != target[0]:
                    continue
                for j in range(i + 1, min(len(words), i + 3 * len(target)) + 1):
                    if words[j - 1] in CHOICE_STOP and words[j - 1] != target[-1]:
                        continue
                    score = _align(words[i:j], target)
                    if score is None:
                        continue
                    rank = (len(target), round(score, 3), -i)
                    if best is None or rank > best[0]:
                        best = (rank, ChoiceMatch(value, score, (tokens[i][1], tokens[j - 1][2]), len(target)))
    if best is not None:
        return best[1]
    if not partial:
        return None
    lowered = " ".join(words)
    for word, index in ORDINALS.items():
        if index <= len(choices) and re.search(rf"\b(the )?{word}( one)?\b", lowered):
            return ChoiceMatch(choices[index - 1][0], 0.5, (0, len(text)), 0)
    found = {}
    for said, start, end in tokens:
        if said in CHOICE_STOP or len(said) < 3:
            continue
        for value, _ in choices:
            if said in [t[0] for t in _choice_tokens(value)]:
                found.setdefault(value, (start, end))
    if len(found) == 1:
        value, span = next(iter(found.items()))
        return ChoiceMatch(value, 0.5, span, 0)
    return None


def parse_choice(text: str, *, options: list[str] | tuple = (), choices: list | None = None, **_) -> Parsed | None:
    """One of the field's choices (``choices`` as from ``choices_of``, or plain ``options``)."""
    if choices is None:
        choices = [(str(o), [str(o)]) for o in options]
    found = find_choice(text, choices, partial=True)
    return Parsed(found.value, found.value) if found else None


# --- free text and names -----------------------------------------------------------

LEAD_INS = re.compile(
    r"^(?:um+|uh+|er+|well|so|and|yes|yeah|okay|ok|sure|hi|hello|i'?d like to (?:get|have|book)|i'?d like|"
    r"i would like to (?:get|have|book)|i would like|i want to (?:get|have|book)|i want|i need|"
    r"can i (?:get|have|book)|could i (?:get|have|book)|it'?s|it is|my \w+ is|just|an?|the|some)\b[\s,.]*",
    re.IGNORECASE,
)
TRAILERS = re.compile(r"(?:[\s,]+(?:please|thanks|thank you|so yeah|yeah|i guess|i think|if possible|on|at|for|"
                      r"and|by|around|about|the))+[\s.!?,]*$", re.IGNORECASE)
# Words that carry no answer of their own: what is left of "it's 718 555 0142, please" or
# "tomorrow at four" once the number, date or time is taken out.
EMPTY_WORDS = {
    "a", "an", "the", "at", "on", "for", "by", "in", "around", "about", "and", "or", "is", "it", "it's", "its",
    "my", "number", "phone", "cell", "mobile", "me", "you", "can", "could", "reach", "call", "please", "thanks",
    "thank", "yes", "yeah", "sure", "ok", "okay", "so", "well", "um", "uh", "that's", "thats", "that", "would",
    "be", "great", "good", "fine", "works", "how", "maybe", "say", "let's", "lets", "o'clock", "oclock",
    "am", "pm", "time", "day", "date", "then", "i", "i'd", "like", "want", "to", "come", "sometime", "hi",
    "hello", "any", "of", "email", "e-mail", "address",
}


def parse_text(text: str, **_) -> Parsed | None:
    """Free text, without lead-ins and politeness: "I'd like a manicure, please" -> "manicure"."""
    cleaned = text.strip()
    while (stripped := LEAD_INS.sub("", cleaned, count=1)) != cleaned:
        cleaned = stripped
    cleaned = TRAILERS.sub("", cleaned).strip(" .!?,")
    if not cleaned:
        cleaned = text.strip(" .!?,")
    if not cleaned:
        return None
    return Parsed(cleaned, cleaned)


def value_spans(text: str, *, today: date, country: str = "US") -> list[tuple[str, tuple[int, int]]]:
    """Phone numbers, e-mails, dates and times inside ``text``, as (type, span)."""
    found: list[tuple[str, tuple[int, int]]] = []
    masked = text

    def take(kind: str, span: tuple[int, int]) -> None:
        nonlocal masked
        found.append((kind, span))
        masked = masked[:span[0]] + " " * (span[1] - span[0]) + masked[span[1]:]

    for _ in range(4):
        phone = find_phone_span(masked, country=country)
        if phone is None:
            break
        take("phone", phone[1])
    for m in re.finditer(r"[\w.%+\-]+@[\w\-]+(?:\.[\w\-]+)*\.[a-z]{2,}", masked, re.IGNORECASE):
        take("email", m.span())
    for kind, finder in (("date", lambda t: find_date_span(t, today=today, country=country)),
                         ("time", lambda t: find_time_span(t))):
        for _ in range(4):
            hit = finder(masked)
            if hit is None or hit[1][1] <= hit[1][0]:
                break
            take(kind, hit[1])
    return found


def has_content(text: str) -> bool:
    """Whether ``text`` says anything beyond filler words ("sure, ", "it's, please" do not)."""
    return any(w not in EMPTY_WORDS for w in re.findall(r"[a-z][a-z'\-]*|\d+", text.lower()))


def is_plainly_value(text: str, *, today: date, country: str = "US") -> bool:
    """The answer is just a phone number, e-mail, date or time ("sure, 202 555 0111", "tomorrow at 4")."""
    spans = value_spans(text, today=today, country=country)
    if not spans:
        return False
    rest = text
    for _, (start, end) in spans:
        rest = rest[:start] + " " * (end - start) + rest[end:]
    return all(w in EMPTY_WORDS for w in re.findall(r"[a-z][a-z'\-]*|\d+", rest.lower()))


NAME_STOP = {"and", "i", "i'd", "id", "i'm", "im", "my", "from", "calling", "speaking", "here", "to", "for", "with",
             "on", "at", "please", "would", "like", "want", "need", "looking", "just", "the", "a", "an", "is", "it",
             "booking", "book", "about", "again", "sorry", "so", "yeah", "yes", "hi", "hello", "but",
             *WEEKDAYS, *MONTHS}
NAME_WORDS = r"[A-Za-z][\w'-]*(?:\s+[A-Za-z][\w'-]*){0,2}"
CAPITAL_WORDS = r"[A-Z][\w'-]*(?:\s+[A-Z][\w'-]*){0,2}"
NAME_PATTERNS = [
    re.compile(rf"\b(?:[Mm]y name is|[Mm]y name's|[Nn]ame is|[Nn]ame's|[Cc]all me|[Ii]t's under|under the name)\s+"
               rf"(?P<v>{NAME_WORDS})"),
    re.compile(rf"\b(?:[Tt]his is|[Ii]t'?s|[Ii] am|[Ii]'?m)\s+(?P<v>{CAPITAL_WORDS})"),  # transcripts capitalise names
    re.compile(rf"(?P<v>\b{CAPITAL_WORDS})\s+(?:speaking|calling|here)\b"),
]


def find_name_span(text: str) -> tuple[str, tuple[int, int]] | None:
    """A caller's name said in passing: "my name is Anna", "this is Anna Smith", "Anna speaking"."""
    for pattern in NAME_PATTERNS:
        for m in pattern.finditer(text):
            words = []
            for word in m["v"].split():
                if word.lower() in NAME_STOP:
                    break
                words.append(word)
            if words:
                name = " ".join(w[:1].upper() + w[1:] for w in words)
                start = m.start("v")
                return name, (start, start + len(" ".join(words)))
    return None


def find_labelled_span(text: str, label: str) -> tuple[str, tuple[int, int]] | None:
    """ "my <label> is X" / "the <label> is X" said in passing."""
    m = re.search(rf"\b(?:(?:my|the|our)\s+)?{re.escape(label)}(?:\s+is|'s|:|\s+will be|\s+should be)\s+(?P<v>[^,.;!?]+)",
                  text, re.IGNORECASE)
    if not m:
        return None
    parsed = parse_text(m["v"])
    return (parsed.value, m.span("v")) if parsed else None


PARSERS: dict[str, Callable[..., Parsed | None]] = {
    "text": parse_text,
    "phone": parse_phone_answer,
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
    """Parse ``text`` as the value of a scenario field (its dict from the validated config).

    Fillers are ignored, and after a self-correction the last value said wins
    ("Friday, no, Saturday"). A free-text field refuses an answer that is only a
    phone number, date or time: that belongs to another question.
    """
    kind = field.get("type", "text")
    parser = PARSERS[kind]
    text = clean(text)
    options = choice_values(field)
    choices = choices_of(field)
    pieces = answer_pieces(text)
    for start, end in pieces:
        piece = text[start:end]
        if kind == "text" and is_plainly_value(piece, today=today, country=country):
            continue
        parsed = parser(piece, today=today, country=country, options=options, choices=choices)
        if parsed is not None:
            return parsed
    if kind == "phone" and len(pieces) > 2:
        return _phone_corrected(text, pieces, country)
    return None


def _phone_corrected(text: str, pieces: list[tuple[int, int]], country: str) -> Parsed | None:
    """ "718 555 01... sorry, 0142": the digits said after the correction replace the last ones before it."""
    last, before = spoken_digits(text[slice(*pieces[0])]), spoken_digits(text[slice(*pieces[1])])
    if not last or not before:
        return None
    for keep in range(len(before), -1, -1):
        candidate = before[:keep] + last.lstrip("+")
        if len(candidate.lstrip("+")) >= 10 and (parsed := parse_phone(candidate, country=country)):
            return parsed
    return None


def find_in_sentence(field: dict, text: str, *, today: date, country: str) -> tuple[Parsed, tuple[int, int]] | None:
    """A value for ``field`` said in passing, anywhere in a sentence, and where it is.

    Stricter than ``parse_field``: a time needs "at"/am/pm, a choice must be said in full,
    free text only as "my name is ..." / "my <label> is ...". The last value said after a
    self-correction wins.
    """
    kind = field.get("type", "text")
    for start, end in answer_pieces(text):
        piece = text[start:end]
        found = _find_in_piece(field, kind, piece, today, country)
        if found is not None:
            parsed, (s, e) = found
            return parsed, (start + s, start + e)
    return None


def _find_in_piece(field: dict, kind: str, text: str, today: date, country: str):
    if kind == "date":
        hit = find_date_span(text, today=today, country=country)
        if hit and hit[0] >= today:
            return Parsed(hit[0].isoformat(), speak_date(hit[0])), hit[1]
    elif kind == "time":
        hit = find_time_span(text, strict=True)
        if hit:
            return Parsed(hit[0].strftime("%H:%M"), speak_time(hit[0])), hit[1]
    elif kind == "phone":
        return find_phone_span(text, country=country)
    elif kind == "email":
        m = re.search(r"[\w.%+\-]+@[\w\-]+(?:\.[\w\-]+)*\.[a-z]{2,}", text, re.IGNORECASE)
        if m and (parsed := parse_email(m.group())):
            return parsed, m.span()
    elif kind == "choice":
        hit = find_choice(text, choices_of(field))
        if hit:
            return Parsed(hit.value, hit.value), hit.span
    else:
        label = field["name"].replace("_", " ")
        if "name" in field["name"] and kind == "text":
            hit = find_name_span(text)
            if hit:
                return Parsed(hit[0], hit[0]), hit[1]
        hit = find_labelled_span(text, label)
        if hit:
            parsed = PARSERS[kind](hit[0], today=today, country=country)
            if parsed is not None:
                return parsed, hit[1]
    return None


def hint_for(field: dict) -> str:
    if field.get("hint"):
        return field["hint"]
    if field.get("type") == "choice":
        return "We offer " + spoken_list(choice_values(field)) + "."
    return DEFAULT_HINTS.get(field.get("type", "text"), DEFAULT_HINTS["text"])


def spoken_list(items: list[str]) -> str:
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def today_in(timezone_name: str, now: datetime | None = None) -> date:
    """Today's date in a company's time zone."""
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(timezone_name or "UTC")
    return (now.astimezone(zone) if now else datetime.now(zone)).date()
