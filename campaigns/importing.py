"""Contact lists: a CSV file (admin, API) or rows of JSON (API) become a campaign's contacts.

Numbers are read in the company's country and stored as E.164 (a SIP URI, with an "@", is kept
as it is); a number already in the campaign, or twice in the list, is counted once. A
``timezone`` column (an IANA name, such as Europe/Berlin) is the contact's own, in which the
calling hours are read. Bad rows are reported with their line and the reason, and the good rows
are still added.
"""

from __future__ import annotations

import csv
import functools
import io
import zoneinfo
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction

from campaigns.models import Campaign, Contact
from voicebot.phone import BadPhoneNumber, to_e164

PHONE_COLUMNS = ("phone", "phone_number", "number", "to", "mobile", "telephone")
NAME_COLUMNS = ("name", "full_name")
TIMEZONE_COLUMNS = ("timezone", "time_zone", "tz")
MAX_VARIABLE_CHARS = 1000
BATCH = 1000


class ContactImportError(ValueError):
    """The whole list is unusable (not CSV, no phone column, too big); ``field`` names the input."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


class BadRow(ValueError):
    """One row that cannot become a contact; the message names the column."""


@dataclass
class RowError:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass
class ImportResult:
    created: int = 0
    errors: list[RowError] = field(default_factory=list)
    duplicate_lines: list[RowError] = field(default_factory=list)  # left out: the number is there already

    @property
    def duplicates(self) -> int:
        return len(self.duplicate_lines)

    def as_dict(self, max_errors: int = 100) -> dict:
        return {"created": self.created, "duplicates": self.duplicates, "error_count": len(self.errors),
                "errors": [{"line": e.line, "message": e.message} for e in self.errors[:max_errors]],
                "duplicate_lines": [{"line": d.line, "message": d.message}
                                    for d in self.duplicate_lines[:max_errors]]}


def import_csv(*, campaign: Campaign, data: bytes | str) -> ImportResult:
    """Add the contacts of a CSV file with a header row: a phone column, an optional name, variables."""
    if len(data) > settings.CAMPAIGNS_IMPORT_MAX_BYTES:
        raise ContactImportError("file", f"the file is {len(data)} bytes; at most "
                                         f"{settings.CAMPAIGNS_IMPORT_MAX_BYTES} are read")
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ContactImportError("file", f"the file is not UTF-8 text (byte {exc.start}); save it as "
                                             "CSV UTF-8") from None
    text = data.lstrip("\ufeff")
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.DictReader(io.StringIO(text, newline=""), dialect=dialect)
    try:
        header = reader.fieldnames or []
    except csv.Error as exc:
        raise ContactImportError("file", f"not a CSV file ({exc})") from None
    header = [name.strip() for name in header if name is not None]
    if not any(name.lower() in PHONE_COLUMNS for name in header):
        raise ContactImportError("file", f"no phone column: the header row must name one of "
                                         f"{', '.join(PHONE_COLUMNS)} (it has {', '.join(header) or 'nothing'})")

    def rows():
        try:
            for row in reader:
                yield reader.line_num, {(key or "").strip(): value for key, value in row.items() if key is not None}
        except csv.Error as exc:
            raise ContactImportError("file", f"line {reader.line_num + 1}: not CSV ({exc})") from None

    with transaction.atomic():  # a file that breaks half-way adds nothing
        return add_contacts(campaign=campaign, rows=rows())


def add_contacts(*, campaign: Campaign, rows: Iterable[tuple[int, dict]]) -> ImportResult:
    """Add ``(line, {"phone": ..., "name": ..., other: value})`` rows; other keys become variables
    (and so do those of a ``"variables": {...}`` object)."""
    result = ImportResult()
    seen: dict[str, int] = {}  # phone -> the line it was first on
    batch: list[tuple[int, Contact]] = []
    country = campaign.company.country
    for count, (line, row) in enumerate(rows, start=1):
        if count > settings.CAMPAIGNS_IMPORT_MAX_ROWS:
            result.errors.append(RowError(line, f"more than {settings.CAMPAIGNS_IMPORT_MAX_ROWS} contacts in one "
                                                "list; the rest were not read"))
            break
        try:
            contact = contact_from(row, country=country)
        except BadRow as exc:
            result.errors.append(RowError(line, str(exc)))
            continue
        if contact.phone in seen:
            result.duplicate_lines.append(RowError(line, f"{contact.phone} is on line {seen[contact.phone]} "
                                                         "already; left out"))
            continue
        seen[contact.phone] = line
        contact.campaign = campaign
        batch.append((line, contact))
        if len(batch) >= BATCH:
            _store(campaign, batch, result)
            batch = []
    _store(campaign, batch, result)
    return result


def contact_from(row: dict, *, country: str) -> Contact:
    """One row as an unsaved Contact; ``BadRow`` naming the column that is wrong."""
    if not isinstance(row, dict):
        raise BadRow("a contact must be an object with a phone")
    values = {str(key).strip(): value for key, value in row.items()}
    phone_key = next((key for key in values if key.lower() in PHONE_COLUMNS), None)
    raw = values.pop(phone_key, None) if phone_key else None
    if raw is None or not str(raw).strip():
        raise BadRow("phone: missing")
    raw = str(raw).strip()
    if "@" in raw:
        phone = raw if len(raw) <= 255 else None
        if phone is None:
            raise BadRow("phone: a SIP address of more than 255 characters")
    else:
        try:
            phone = to_e164(raw, country=country)
        except BadPhoneNumber as exc:
            raise BadRow(f"phone: {exc}") from None
    name_key = next((key for key in values if key.lower() in NAME_COLUMNS), None)
    name = str(values.pop(name_key) or "").strip() if name_key else ""
    if len(name) > 200:
        raise BadRow("name: more than 200 characters")
    zone_key = next((key for key in values if key.lower() in TIMEZONE_COLUMNS), None)
    zone = str(values.pop(zone_key) or "").strip() if zone_key else ""
    if zone and zone not in known_zones():
        raise BadRow(f"{zone_key}: {zone[:80]!r} is not a known time zone; use a name such as Europe/Berlin or "
                     "America/New_York")
    nested = values.pop("variables") if isinstance(values.get("variables"), dict) else {}
    variables = {}
    for key, value in [*values.items(), *nested.items()]:
        key = str(key).strip()
        if not key:
            continue
        if isinstance(value, (dict, list)):
            raise BadRow(f"{key}: a variable must be text or a number, not {type(value).__name__}")
        text = "" if value is None else str(value).strip()
        if len(text) > MAX_VARIABLE_CHARS:
            raise BadRow(f"{key}: more than {MAX_VARIABLE_CHARS} characters")
        variables[key] = text
    return Contact(phone=phone, name=name, timezone=zone, variables=variables)


@functools.cache
def known_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _store(campaign: Campaign, batch: list[tuple[int, Contact]], result: ImportResult) -> None:
    if not batch:
        return
    existing = set(campaign.contacts.filter(phone__in=[c.phone for _, c in batch]).values_list("phone", flat=True))
    new = [contact for _, contact in batch if contact.phone not in existing]
    result.duplicate_lines += [RowError(line, f"{contact.phone} is in the campaign already; left out")
                               for line, contact in batch if contact.phone in existing]
    # ignore_conflicts: a list imported twice at once still adds each number once.
    Contact.objects.bulk_create(new, ignore_conflicts=True)
    result.created += len(new)
