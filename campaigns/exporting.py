"""A campaign's results as CSV: one line per contact, with how its calls ended and what post-call found.

The lead score and booking come from ``postcall`` (``Lead.score``/``tier`` and ``CallOutcome.booking``
of the contact's calls, the latest attempt's where several have one); empty when there is none.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator

from campaigns.models import Campaign, Contact
from voicebot import spreadsheet

COLUMNS = ["campaign", "phone", "name", "timezone", "variables", "status", "attempts", "outcome", "call_result",
           "lead_score", "lead_tier", "booking", "note", "last_call_id", "last_called_at"]
_text = spreadsheet.text_cell


def _latest_per_contact(rows: Iterable[tuple]) -> dict[int, tuple]:
    """(contact id, attempt number, *values) -> contact id: the values of its latest attempt."""
    latest: dict[int, tuple] = {}
    for contact_id, number, *values in rows:
        if contact_id not in latest or number > latest[contact_id][0]:
            latest[contact_id] = (number, *values)
    return {contact_id: values[1:] for contact_id, values in latest.items()}


def result_rows(*, campaign: Campaign) -> Iterator[list]:
    """The campaign's contacts as rows of ``COLUMNS``, in list order."""
    from postcall.models import CallOutcome, Lead

    key = ("call__campaign_attempt__contact_id", "call__campaign_attempt__number")
    of_campaign = {"call__campaign_attempt__campaign": campaign}
    outcomes = _latest_per_contact(CallOutcome.objects.filter(**of_campaign).values_list(*key, "result"))
    bookings = _latest_per_contact(CallOutcome.objects.filter(**of_campaign, booking__isnull=False)
                                   .values_list(*key, "booking"))
    leads = _latest_per_contact(Lead.objects.filter(**of_campaign).values_list(*key, "score", "tier"))
    last_calls = _latest_per_contact(campaign.attempts.values_list("contact_id", "number", "call_id", "placed_at"))
    contacts = (Contact.objects.filter(campaign=campaign).order_by("pk")
                .values_list("pk", "phone", "name", "timezone", "variables", "status", "attempts_made",
                             "last_status", "note"))
    for pk, phone, name, zone, variables, status, attempts, last_status, note in contacts.iterator(chunk_size=2000):
        score, tier = leads.get(pk, ("", ""))
        booking = bookings.get(pk, (None,))[0]
        call_id, called_at = last_calls.get(pk, ("", None))
        yield [campaign.name, phone, _text(name), zone, json.dumps(variables, ensure_ascii=False), status, attempts,
               last_status, outcomes.get(pk, ("",))[0], score, tier,
               json.dumps(booking, ensure_ascii=False) if booking else "", _text(note), call_id or "",
               called_at.isoformat() if called_at else ""]


def csv_lines(*, campaigns: Iterable[Campaign]) -> Iterator[str]:
    """The header and every contact of ``campaigns`` as CSV text, line by line (UTF-8 with a BOM for Excel)."""
    return spreadsheet.csv_lines(COLUMNS, (row for campaign in campaigns for row in result_rows(campaign=campaign)))
