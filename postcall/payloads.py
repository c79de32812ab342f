"""The JSON bodies of webhook events (the ``data`` part of the envelope)."""

from __future__ import annotations

from voicebot.models import Call, CallTurn


def iso(value) -> str | None:
    return value.isoformat() if value else None


def call_data(call: Call) -> dict:
    return {
        "id": call.pk, "bot": call.bot.slug if call.bot else None, "transport": call.transport,
        "direction": call.direction, "from": call.from_number, "to": call.to_number, "status": call.status,
        "end_reason": call.end_reason, "started_at": iso(call.started_at), "ended_at": iso(call.ended_at),
        "duration_sec": call.duration_sec, "scenario": call.scenario,
        "answered_at": iso(call.answered_at), "variables": call.variables,
    }


def outcome_data(outcome) -> dict:
    return {"result": outcome.result, "intent": outcome.intent, "intent_source": outcome.intent_source,
            "fields": outcome.fields, "booking": outcome.booking}


def lead_data(lead) -> dict:
    return {"id": lead.pk, "call_id": lead.call_id, "bot": lead.bot.slug if lead.bot else None, "name": lead.name,
            "phone": lead.phone, "email": lead.email, "contact_sources": lead.contact_sources, "score": lead.score,
            "tier": lead.tier, "score_reasons": lead.score_reasons}


def call_ended_data(call: Call, turns: list[CallTurn], outcome, lead) -> dict:
    return {
        "call": call_data(call),
        "transcript": [{"role": t.role, "text": t.text, "start_ms": t.start_ms, "interrupted": t.interrupted}
                       for t in turns],
        "summary": outcome.summary, "summary_source": outcome.summary_source,
        "outcome": outcome_data(outcome),
        "lead": lead_data(lead) if lead else None,
        "analytics": call.analytics,
    }


def booking_data(call: Call, outcome) -> dict:
    return {"call": call_data(call), "booking": outcome.booking}


def report_data(report) -> dict:
    return {"id": report.pk, "period": report.period, "period_start": iso(report.period_start),
            "period_end": iso(report.period_end), "figures": report.data}
