"""Leads as CSV: one line per lead, for a spreadsheet or a CRM import (the API's ``GET /leads/export/``).

Free text the caller said (a name, an e-mail) is written so that a spreadsheet shows it as
text and never runs it as a formula; score reasons are one cell (``asked_price +10; gave_phone +15``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from postcall.models import Lead
from voicebot import spreadsheet

COLUMNS = ["id", "created_at", "company", "bot", "call_id", "name", "phone", "email", "score", "tier",
           "score_reasons"]
_text = spreadsheet.text_cell


def _phone(value: str) -> str:
    """A phone number as the caller gave it: E.164 (+49...) is kept as is, anything else is free text."""
    digits = value[1:].replace(" ", "")
    return value if value.startswith("+") and digits.isdigit() else _text(value)


def reasons_text(reasons) -> str:
    """``[{"signal": "asked_price", "points": 10}, ...]`` as ``asked_price +10; ...``."""
    parts = []
    for reason in reasons or []:
        if isinstance(reason, dict):
            points = reason.get("points", 0)
            sign = "+" if isinstance(points, (int, float)) and points >= 0 else ""
            parts.append(f"{reason.get('signal', '?')} {sign}{points}")
    return "; ".join(parts)


def lead_rows(leads: Iterable[Lead]) -> Iterator[list]:
    """Each lead as a row of ``COLUMNS`` (pass a queryset with ``select_related("company", "bot")``)."""
    for lead in leads:
        yield [lead.pk, lead.created_at.isoformat(), lead.company.slug, lead.bot.slug if lead.bot else "",
               lead.call_id, _text(lead.name), _phone(lead.phone), _text(lead.email), lead.score, lead.tier,
               reasons_text(lead.score_reasons)]


def csv_lines(leads) -> Iterator[str]:
    """The header and every lead of the queryset ``leads`` as CSV text, line by line (UTF-8 with a BOM for Excel)."""
    return spreadsheet.csv_lines(COLUMNS, lead_rows(leads.select_related("company", "bot").iterator(chunk_size=2000)))
