"""``process_call``'s work: analytics, outcome, lead, then the webhooks.

Idempotent: every write is an upsert keyed by the call, events are queued once
per (endpoint, event, call), and a call already processed is left as it is
unless ``force`` is given. The LLM is asked before the database transaction so
that no row is locked while it thinks.
"""

from __future__ import annotations

import logging
import re

from django.db import transaction

from postcall import extraction, scoring, summary
from postcall.analytics import call_analytics
from postcall.models import CallOutcome, Event, Lead, Source
from postcall.payloads import booking_data, call_ended_data, lead_data
from postcall.webhooks import queue_event
from voicebot.models import Call, CallTurn

log = logging.getLogger(__name__)

# Bot sentences that answer nothing: the honest "I don't know" (and its offer), a re-prompt, a closing line.
NO_ANSWER_RE = re.compile(
    r"don'?t have (that|this|any|the) information|i don'?t know|didn'?t (catch|understand|get) that|"
    r"say (it|that) (another|a different) way|(repeat|rephrase) (that|it|the question)|take a message|"
    r"(something|anything) else i can help|help you with something else|are you still there|good ?bye|"
    r"thanks? (you )?for calling|"
    r"reached the end of what i can do|end the call now|put you through|transfer you",
    re.IGNORECASE)


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+", text or "") if s.strip()]


def _norm(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9']+", text.lower()))


def got_an_answer(call: Call, turns: list[CallTurn]) -> bool:
    """Whether any reply to the caller said something: an answer from the knowledge, the LLM or a script.

    A reply made only of the bot's fallback phrase, the "I don't have that information" line
    and its offer, re-prompts and goodbyes answered nothing.
    """
    fallback = {_norm(s) for s in _sentences(call.bot.fallback_phrase if call.bot else "")}
    heard = False
    for turn in turns:
        if turn.role == CallTurn.Role.CALLER and turn.text.strip():
            heard = True
        elif turn.role == CallTurn.Role.BOT and heard:
            for sentence in _sentences(turn.text):
                if _norm(sentence) and _norm(sentence) not in fallback and not NO_ANSWER_RE.search(sentence):
                    return True
    return False


def result_for(call: Call, extracted: extraction.Extraction, has_lead: bool, answered: bool,
               got_answer: bool = True) -> str:
    """The call's result. "Question answered" only when a reply answered something; a call whose
    every reply was the fallback phrase (or "I don't have that information") is ``failed``: the
    caller talked (so not "no conversation") and got nothing, which staff need to look at, like a
    call that ended in an error."""
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
    if not got_answer:
        return CallOutcome.Result.FAILED
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
    known = [name for name in (getattr(call.bot, "name", ""), call.company.name) if name]
    text, text_source = summary.summarize(turns, extracted.intent, extracted.fields, analytics["duration_sec"],
                                          known=known)

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
            "company": call.company,
            "result": result_for(call, extracted, lead is not None, analytics["answered"], got_an_answer(call, turns)),
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
