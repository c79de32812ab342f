"""``process_call``'s work: analytics, outcome, lead, then the webhooks.

Idempotent: every write is an upsert keyed by the call, events are queued once
per (endpoint, event, call), and a call already processed is left as it is
unless ``force`` is given. The LLM is asked before the database transaction so
that no row is locked while it thinks.
"""

from __future__ import annotations

import logging

from django.db import transaction

from postcall import extraction, scoring, summary
from postcall.analytics import call_analytics
from postcall.models import CallOutcome, Event, Lead, Source
from postcall.payloads import booking_data, call_ended_data, lead_data
from postcall.webhooks import queue_event
from voicebot.models import Call

log = logging.getLogger(__name__)


def result_for(call: Call, extracted: extraction.Extraction, has_lead: bool, answered: bool) -> str:
    if call.status == Call.Status.FAILED:
        return CallOutcome.Result.FAILED
    if not answered or call.status == Call.Status.VOICEMAIL:  # a recording is nobody to talk with
        return CallOutcome.Result.NO_CONVERSATION
    if extracted.booking:
        return CallOutcome.Result.BOOKING
    if call.status == Call.Status.TRANSFERRED:
        return CallOutcome.Result.TRANSFERRED
    if has_lead:
        return CallOutcome.Result.LEAD
    return CallOutcome.Result.INFORMATION


def contact_of(call: Call, extracted: extraction.Extraction) -> tuple[dict, dict]:
    """The lead's contact fields and where each came from."""
    contact, sources = {}, {}
    for name in ("name", "phone", "email"):
        item = extracted.fields.get(name)
        if item and item["value"]:
            contact[name], sources[name] = str(item["value"]), item["source"]
    # The other party's number: the caller's, or on an outbound call the callee's.
    other_party = call.to_number if call.direction == Call.Direction.OUTBOUND else call.from_number
    if "phone" not in contact and other_party and call.transport != Call.Transport.CHAT:
        contact["phone"], sources["phone"] = other_party, Source.CALLER_ID
    return contact, sources


def signals_of(extracted: extraction.Extraction, call: Call) -> set[str]:
    """Built-in scoring signals: what the caller gave, not what caller id revealed."""
    signals = {f"gave_{name}" for name in ("phone", "email", "name") if name in extracted.fields}
    if extracted.booking:
        signals.add("booking_created")
    if call.status == Call.Status.TRANSFERRED:
        signals.add("transferred")
    return signals


def process(call_id: int, force: bool = False) -> CallOutcome | None:
    call = Call.objects.select_related("bot", "company").filter(pk=call_id).first()
    if call is None:
        log.warning("process_call: call %s does not exist", call_id)
        return None
    existing = CallOutcome.objects.filter(call=call).first()
    if existing is not None and not force:
        # Already processed: only make sure its events were queued (a worker may have died after the commit).
        with transaction.atomic():
            queue_events(call, existing)
        return existing

    turns = list(call.turns.order_by("index"))
    analytics = call_analytics(call, turns)
    extracted = extraction.extract(call, turns)
    schema = extraction.field_schema(call.bot)
    missing = [f for f in schema if f["name"] not in extracted.fields and f.get("type") not in ("phone", "email")]
    if missing and analytics["answered"]:
        for name, value in summary.llm_fields(turns, missing).items():
            extracted.set(name, value, Source.LLM)
        extracted.booking = extracted.booking or extraction.booking_from(call, extracted)
    text, text_source = summary.summarize(turns, extracted.intent, extracted.fields, analytics["duration_sec"])

    caller_text = extraction.caller_text(turns)
    rules, hot, warm = scoring.rules_for_bot(call.bot)
    score = scoring.score(caller_text, signals_of(extracted, call), rules, hot, warm)
    contact, contact_sources = contact_of(call, extracted)
    wants_lead = analytics["answered"] and bool(contact) and call.status != Call.Status.FAILED

    with transaction.atomic():
        Call.objects.filter(pk=call.pk).update(analytics=analytics)
        call.analytics = analytics
        lead = None
        if wants_lead:
            lead, _ = Lead.objects.update_or_create(call=call, defaults={
                "company": call.company, "bot": call.bot, "name": contact.get("name", "")[:200],
                "phone": contact.get("phone", "")[:32], "email": contact.get("email", ""),
                "contact_sources": contact_sources, "score": score.points, "tier": score.tier,
                "score_reasons": score.reasons})
        else:
            Lead.objects.filter(call=call).delete()
        outcome, _ = CallOutcome.objects.update_or_create(call=call, defaults={
            "company": call.company, "result": result_for(call, extracted, lead is not None, analytics["answered"]),
            "intent": extracted.intent, "intent_source": extracted.intent_source, "summary": text,
            "summary_source": text_source, "fields": extracted.fields, "booking": extracted.booking})
        queue_events(call, outcome)
    return outcome


def queue_events(call: Call, outcome: CallOutcome) -> None:
    lead = Lead.objects.filter(call=call).first()
    turns = list(call.turns.order_by("index"))
    key = f"call:{call.pk}"
    queue_event(call.company, Event.CALL_ENDED, key, call_ended_data(call, turns, outcome, lead))
    if lead is not None:
        queue_event(call.company, Event.LEAD_CAPTURED, key, lead_data(lead))
    if outcome.booking:
        queue_event(call.company, Event.BOOKING_CREATED, key, booking_data(call, outcome))
