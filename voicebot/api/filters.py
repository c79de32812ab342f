"""Query-parameter filters of list endpoints: ``?bot=alpha&status=completed&started_after=...``.

``apply_filters(queryset, params, {"param": "field__lookup"})`` reads each parameter the
way the model field it filters reads values (an id that is not a number, a boolean that is
not one, a status outside the field's choices, a date that is no date) and answers a 400
naming the parameter rather than a 500 or a silently ignored filter.
"""

from __future__ import annotations

import datetime

from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from voicebot.api.errors import field_error

LOOKUP_SUFFIXES = ("gte", "lte", "gt", "lt", "icontains", "contains", "iexact", "exact", "in")
TRUE, FALSE = ("true", "1", "yes"), ("false", "0", "no")


def _field(model, path: str) -> models.Field:
    parts = path.split("__")
    if parts[-1] in LOOKUP_SUFFIXES:
        parts = parts[:-1]
    field = None
    for part in parts:
        field = model._meta.get_field(part)
        if field.is_relation and part != parts[-1]:
            model = field.related_model
    if field.is_relation:  # "bot" compares the primary key
        field = field.target_field
    return field


def parse_moment(value: str, *, end_of_day: bool = False) -> datetime.datetime | None:
    """An ISO date-time, or a date (its start, or with ``end_of_day`` the next day's start)."""
    try:
        day = parse_date(value)  # a bare date first: parse_datetime reads one as its midnight
        moment = parse_datetime(value) if day is None else None
    except ValueError:  # well formed, but no such day or time (2026-02-30)
        return None
    if day is not None:
        moment = datetime.datetime.combine(day + datetime.timedelta(days=1 if end_of_day else 0), datetime.time())
    elif moment is None:
        return None
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment, datetime.UTC)
    return moment


def parse_value(field: models.Field, param: str, raw: str, *, end_of_day: bool = False):
    if isinstance(field, models.BooleanField):
        if raw.lower() in TRUE:
            return True
        if raw.lower() in FALSE:
            return False
        raise field_error(param, f"'{raw}' is not a boolean; use true or false.")
    if isinstance(field, models.DateTimeField):
        moment = parse_moment(raw, end_of_day=end_of_day)
        if moment is None:
            raise field_error(param, f"'{raw}' is not a date (2026-12-01) or ISO date-time (2026-12-01T09:00:00Z).")
        return moment
    if field.choices:
        allowed = [str(choice) for choice, _ in field.flatchoices]
        if raw not in allowed:
            raise field_error(param, f"'{raw}' is not one of {', '.join(allowed)}.")
        return raw
    try:
        value = field.to_python(raw)
    except ValidationError as exc:
        raise field_error(param, f"'{raw}': {exc.messages[0]}") from None
    if isinstance(field, (models.IntegerField, models.AutoField)) and not -(2 ** 63) < value < 2 ** 63:
        raise field_error(param, f"'{raw}' is out of range.")
    return value


def apply_filters(queryset, params, lookups: dict[str, str]):
    """``queryset`` filtered by each of ``lookups``' parameters present (and not empty) in ``params``."""
    for param, lookup in lookups.items():
        raw = params.get(param)
        if raw is None or raw == "":
            continue
        field = _field(queryset.model, lookup)
        value = parse_value(field, param, raw, end_of_day=lookup.endswith(("__lt", "__lte")) and len(raw) == 10)
        if lookup.endswith("__lte") and len(raw) == 10 and isinstance(field, models.DateTimeField):
            lookup = lookup[:-5] + "__lt"  # ?started_before=2026-12-01 includes all of that day
        queryset = queryset.filter(**{lookup: value})
    return queryset
