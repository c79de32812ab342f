"""Calling hours per weekday: ``{"mon": [["09:00", "17:00"]], "sat": [["10:00", "13:00"]]}``.

A day missing (or with ``[]``) has no calls. Each window is ``[start, end]`` in local ``HH:MM``,
the start included and the end not (``"24:00"`` ends at midnight); windows of one day may not
overlap, and one may not run past midnight (split it: ``"mon": [["22:00", "24:00"]], "tue":
[["00:00", "02:00"]]``). ``normalize`` checks a value and returns it in its one stored form
(days in week order, ``HH:MM`` zero-padded, windows sorted); every error names its place
(``sat, window 1: '25:00' is not a time (HH:MM, 00:00 to 24:00)``).
"""

from __future__ import annotations

import re
from itertools import pairwise

from django.core.exceptions import ValidationError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
TIME = re.compile(r"(\d{1,2}):(\d{2})")
TEXT_WINDOW = re.compile(r"\s*(\d{1,2}:\d{2})\s*[-\u2013]\s*(\d{1,2}:\d{2})\s*")


def default_calling_hours() -> dict:
    return {day: [["09:00", "18:00"]] for day in DAYS[:5]}


def minutes(text: str) -> int | None:
    """``"09:30"`` as 570 minutes after midnight; None if it is not a time of day (``"24:00"`` is 1440)."""
    match = TIME.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None:
        return None
    hour, minute = int(match[1]), int(match[2])
    if minute > 59 or hour > 24 or (hour == 24 and minute):
        return None
    return hour * 60 + minute


def hhmm(value: int) -> str:
    return f"{value // 60:02d}:{value % 60:02d}"


def parse_day(day: str, windows) -> list[tuple[int, int]]:
    """One day's windows as sorted (start, end) minutes; ``ValidationError`` naming ``day`` and the window."""
    if not isinstance(windows, list):
        raise ValidationError(f'{day}: a list of [start, end] windows, such as [["09:00", "17:00"]]')
    errors, spans = [], []
    for number, window in enumerate(windows, start=1):
        place = f"{day}, window {number}"
        if not isinstance(window, (list, tuple)) or len(window) != 2:
            errors.append(f'{place}: a window is [start, end], such as ["09:00", "17:00"], not {window!r}')
            continue
        start, end = (minutes(value) for value in window)
        bad = [value for value, parsed in zip(window, (start, end), strict=True) if parsed is None]
        if bad:
            errors.append(f"{place}: {bad[0]!r} is not a time (HH:MM, 00:00 to 24:00)")
        elif end <= start:
            errors.append(f"{place}: it must end after it starts ({hhmm(start)}-{hhmm(end)}); a window cannot run "
                          "past midnight, split it over two days")
        else:
            spans.append((start, end))
    spans.sort()
    for (s1, e1), (s2, e2) in pairwise(spans):
        if s2 < e1:
            errors.append(f"{day}: the windows {hhmm(s1)}-{hhmm(e1)} and {hhmm(s2)}-{hhmm(e2)} overlap")
    if errors:
        raise ValidationError(errors)
    return spans


def parse(value) -> dict[int, list[tuple[int, int]]]:
    """Weekday (0 = Monday) -> its windows in minutes; ``ValidationError`` listing every error."""
    if not isinstance(value, dict):
        raise ValidationError('Calling hours are an object of days, such as {"mon": [["09:00", "17:00"]]}.')
    errors, week = [], {}
    for day, windows in value.items():
        if day not in DAYS:
            errors.append(f"{day!r} is not a day; use {', '.join(DAYS)}")
            continue
        try:
            week[DAYS.index(day)] = parse_day(day, windows)
        except ValidationError as exc:
            errors.extend(exc.messages)
    if not errors and not any(week.values()):
        errors.append("no calling window on any day; add one, such as \"mon\": [[\"09:00\", \"17:00\"]]")
    if errors:
        raise ValidationError(errors)
    return week


def normalize(value) -> dict:
    """``value`` checked, in its stored form; ``ValidationError`` as ``parse``."""
    week = parse(value)
    return {DAYS[day]: [[hhmm(s), hhmm(e)] for s, e in week[day]] for day in sorted(week) if week[day]}


def day_text(windows: list) -> str:
    """One day's stored windows as admin shows them: ``09:00-12:00, 13:00-17:00``."""
    return ", ".join(f"{start}-{end}" for start, end in windows)


def from_day_text(day: str, text: str) -> list[list[str]]:
    """The admin's ``09:00-12:00, 13:00-17:00`` as stored windows (empty: no calls that day)."""
    windows = []
    for number, part in enumerate(filter(None, (p.strip() for p in (text or "").split(","))), start=1):
        match = TEXT_WINDOW.fullmatch(part)
        if match is None:
            raise ValidationError(f"{day}, window {number}: {part!r} is not start-end, such as 09:00-17:00")
        windows.append([match[1], match[2]])
    return [[hhmm(s), hhmm(e)] for s, e in parse_day(day, windows)]


def describe(value) -> str:
    """Short text of a week: ``Mon-Fri 09:00-17:00; Sat 10:00-13:00``."""
    try:
        week = parse(value)
    except ValidationError:
        return "invalid calling hours"
    groups: list[tuple[list[int], str]] = []
    for day in range(7):
        text = day_text([[hhmm(s), hhmm(e)] for s, e in week.get(day, [])])
        if not text:
            continue
        if groups and groups[-1][1] == text and groups[-1][0][-1] == day - 1:
            groups[-1][0].append(day)
        else:
            groups.append(([day], text))
    short = [name[:3] for name in DAY_NAMES]
    return "; ".join(f"{short[days[0]]}{'-' + short[days[-1]] if len(days) > 1 else ''} {text}"
                     for days, text in groups)
