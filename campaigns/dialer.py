"""The dialler: each beat tick settles ended attempts, then places calls where there is room.

A tick (``tick``) first reads the final status of every attempt in flight (``settle``): reached,
call again later, or not reached. Then, for each running campaign inside its calling hours, it
claims due contacts with ``SELECT ... FOR UPDATE SKIP LOCKED`` (so dialers on many workers never
take one contact twice), only those whose local time (``Contact.timezone``, else the campaign's)
is inside the campaign's calling hours, and places each call through ``request_call``, which
queues the provider dial when the claim commits. Room is the least of the campaign's concurrent calls, its calls per
minute and the company's lines (``Company.max_lines``, counted over every outbound call in
flight; inbound calls take lines at the runner too, and a call it refuses ends as failed).
A contact is called again after busy, no answer, voicemail or failed by that outcome's own delay
and limit (``Campaign.retry_rule``), within ``max_attempts``. When most recent calls failed (the
provider's or the runner's errors), the circuit breaker pauses the campaign (``breaker_reason``).

The dialler never waits on a call: it reads the Call rows that telephony and the runner write.
A call that never reports a final status is settled after a time limit as ``unknown`` and not
called again (calling someone twice is worse than once too few); one never handed to the
provider (still queued, no ``DIAL_REQUESTED_KEY``: no worker ran the dial task) is canceled, so
that a late dial task leaves it alone, and called again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from campaigns.models import RETRY_OUTCOMES, Attempt, Campaign, Contact
from campaigns.window import dates_reason, open_zones
from voicebot.models import Call
from voicebot.outbound_calls import DIAL_REQUESTED_KEY, CallRequestError, record_status, request_call

logger = logging.getLogger(__name__)

REACHED = frozenset({Call.Status.COMPLETED, Call.Status.TRANSFERRED})
LIVE = (Call.Status.QUEUED, Call.Status.RINGING, Call.Status.IN_PROGRESS)
LOCK_NAMESPACE = 0x43414D50  # "CAMP": one dialler at a time per company (pg advisory lock key space)
VOICEMAIL_MESSAGE = "voicemail_message"  # the call variable BotConfig reads over the bot's own message


@dataclass
class TickReport:
    settled: int = 0
    placed: int = 0
    waiting: dict[int, str] = field(default_factory=dict)  # campaign id -> why it placed nothing

    def as_dict(self) -> dict:
        return {"settled": self.settled, "placed": self.placed, "waiting": self.waiting}


def tick(*, now: datetime | None = None) -> TickReport:
    """One beat tick over every campaign."""
    now = now or timezone.now()
    report = TickReport(settled=settle_ended(now=now))
    for campaign_id in Campaign.objects.filter(status=Campaign.Status.RUNNING).order_by("pk").values_list(
            "pk", flat=True):
        placed, why = dial(campaign_id=campaign_id, now=now)
        report.placed += placed
        if why:
            report.waiting[campaign_id] = why
    return report


# --- Settling attempts ----------------------------------------------------------------------

def settle_ended(*, now: datetime) -> int:
    """Settle every attempt whose call ended (or ran out of time); the number settled."""
    oldest_live = now - timedelta(seconds=settings.CAMPAIGNS_DIAL_TIMEOUT_SEC)
    candidates = (Attempt.objects.filter(settled_at__isnull=True)
                  .filter(Q(call__isnull=True) | Q(call__status__in=Call.FINAL_STATUSES) | Q(placed_at__lte=oldest_live))
                  .order_by("pk").values_list("pk", flat=True))
    return sum(settle(attempt_id=pk, now=now) for pk in candidates)


def settle(*, attempt_id: int, now: datetime) -> bool:
    """Record one attempt's result and decide its contact's next step; False while its call goes on."""
    with transaction.atomic():
        attempt = (Attempt.objects.select_for_update(skip_locked=True, of=("self",))
                   .select_related("campaign").filter(pk=attempt_id, settled_at__isnull=True).first())
        if attempt is None:
            return False  # settled already, or being settled by another worker
        call = Call.objects.select_for_update().filter(pk=attempt.call_id).first() if attempt.call_id else None
        result, note = _result(call, attempt, now)
        if result is None:
            return False
        if not note and result not in REACHED and call is not None and call.metrics.get("notes"):
            note = str(call.metrics["notes"][-1])  # why it failed, as the dial task or the runner said
        not_dialled = call is not None and never_dialled(call)
        if not_dialled:  # the dial task never ran: a late one must not ring (the status is final now)
            record_status(call_id=call.pk, status=Call.Status.CANCELED, note=f"campaigns: {note}")
        attempt.result, attempt.note, attempt.settled_at = result, note, now
        attempt.save(update_fields=["result", "note", "settled_at"])
        contact = Contact.objects.select_for_update().get(pk=attempt.contact_id)
        if contact.attempts_made == attempt.number:
            contact.last_status = result
            if contact.status == Contact.Status.CALLING:  # not skipped by staff meanwhile
                contact.status, contact.next_attempt_at, contact.note = _next_step(
                    attempt.campaign, contact, result, not_dialled=not_dialled, note=note, now=now)
            contact.save(update_fields=["last_status", "status", "next_attempt_at", "note", "updated_at"])
    return True


def never_dialled(call: Call) -> bool:
    """Still queued and never handed to the provider (``telephony.tasks.dial_call`` marks the hand-over)."""
    return call.status == Call.Status.QUEUED and DIAL_REQUESTED_KEY not in call.metrics


def _result(call: Call | None, attempt: Attempt, now: datetime) -> tuple[str | None, str]:
    """The attempt's result and a note, or (None, "") while the call may still end on its own."""
    if call is None:
        return Attempt.UNKNOWN, "the call's row was deleted"
    placed_for = now - attempt.placed_at
    if call.status in Call.FINAL_STATUSES:
        # "completed" after an answer: the runner is still storing the conversation, which may
        # turn it into "voicemail" or "transferred"; wait for it, within a grace period.
        stored = call.end_reason or call.status != Call.Status.COMPLETED
        if stored:
            return call.status, ""
        if now - (call.ended_at or attempt.placed_at) >= timedelta(seconds=settings.CAMPAIGNS_STORE_GRACE_SEC):
            return call.status, "no conversation was stored (the runner refused the call, or its record is spooled)"
        return None, ""
    dial_timeout = settings.CAMPAIGNS_DIAL_TIMEOUT_SEC
    if placed_for >= timedelta(seconds=dial_timeout):
        if never_dialled(call):
            return Call.Status.CANCELED, f"never dialled within {dial_timeout} s (is a worker running?)"
        if call.status in (Call.Status.QUEUED, Call.Status.RINGING):
            what = "still ringing" if call.status == Call.Status.RINGING else "handed to the provider, no status"
            return Attempt.UNKNOWN, f"{what} after {dial_timeout} s: the provider sent no final status"
    answered_for = now - (call.answered_at or attempt.placed_at)
    if call.status == Call.Status.IN_PROGRESS and answered_for >= timedelta(seconds=settings.CAMPAIGNS_CALL_TIMEOUT_SEC):
        return Attempt.UNKNOWN, f"in progress for over {settings.CAMPAIGNS_CALL_TIMEOUT_SEC} s with no end stored"
    return None, ""


def _next_step(campaign: Campaign, contact: Contact, result: str, *, not_dialled: bool, note: str,
               now: datetime) -> tuple[str, datetime | None, str]:
    """(status, next attempt, note) of a contact whose call ended with ``result``."""
    label = dict(Attempt.RESULTS).get(result, result).lower()
    if result in REACHED:
        return Contact.Status.DONE, None, ""
    if campaign.status in Campaign.FINISHED:
        return Contact.Status.SKIPPED, None, f"the campaign was {campaign.get_status_display().lower()} ({label})"
    if result == Attempt.UNKNOWN:
        return Contact.Status.FAILED, None, f"{note}; not called again, so as never to call twice"
    out_of_attempts = contact.attempts_made >= campaign.max_attempts
    if not_dialled:  # the attempt counts, but nobody was called: again at once
        if not out_of_attempts:
            return Contact.Status.PENDING, now, ""
        return Contact.Status.FAILED, None, f"not reached in {contact.attempts_made} attempts (last: {label})"
    times, minutes = campaign.retry_rule(result)
    ended_so = contact.attempts.filter(result=result).count()  # this attempt included
    if times and ended_so <= times and not out_of_attempts:
        return Contact.Status.PENDING, now + timedelta(minutes=minutes), ""
    # Not called again. An answering machine took the call (and the message, if the bot leaves one): done.
    final = Contact.Status.DONE if result == Call.Status.VOICEMAIL else Contact.Status.FAILED
    if times and ended_so > times:
        why = f"{label} {ended_so} times; called again at most {times} after {label}"
    elif times and final == Contact.Status.DONE:
        why = f"voicemail on the last of {contact.attempts_made} attempts"
    elif times:
        why = f"not reached in {contact.attempts_made} attempts (last: {label})"
    else:
        retried = [dict(Call.Status.choices)[status].lower() for status in RETRY_OUTCOMES
                   if campaign.retry_rule(status)[0]]
        why = f"{label}: not called again (the campaign calls again only after {', '.join(retried) or 'nothing'})"
    if final == Contact.Status.DONE:
        return final, None, why if times else ""
    return final, None, f"{why}: {note}" if note and result == Call.Status.FAILED else why


# --- Placing calls --------------------------------------------------------------------------

def dial(*, campaign_id: int, now: datetime) -> tuple[int, str]:
    """Place the calls ``campaign`` has room for now: (calls placed, why none were, or "")."""
    with transaction.atomic():
        campaign = (Campaign.objects.select_for_update(skip_locked=True, of=("self",))
                    .select_related("company", "bot__company").filter(pk=campaign_id, status=Campaign.Status.RUNNING)
                    .first())
        if campaign is None:
            return 0, "being dialled by another worker, or no longer running"
        if not _company_lock(campaign.company_id):
            return 0, "another campaign of the company is being dialled"
        if campaign.ends_at and now >= campaign.ends_at:
            finish(campaign=campaign, now=now, note="the campaign ended before this contact was reached")
            return 0, "ended"
        open_contacts = campaign.contacts.filter(status__in=(Contact.Status.PENDING, Contact.Status.CALLING))
        if not open_contacts.exists():
            finish(campaign=campaign, now=now)
            return 0, "completed"
        tripped = breaker_reason(campaign, now)
        if tripped:
            campaign.status, campaign.status_note = Campaign.Status.PAUSED, tripped
            campaign.save(update_fields=["status", "status_note", "updated_at"])
            logger.warning("campaign %s %s", campaign.pk, tripped)
            return 0, tripped
        why = dates_reason(campaign, now)
        if why:
            return 0, why
        due = due_contacts(campaign, now)
        zones, why = open_zones(campaign, due.order_by().values_list("timezone", flat=True).distinct(), now)
        if not zones:
            return 0, why or "no contact is due"
        room = capacity(campaign, now)
        if room <= 0:
            return 0, "no room: concurrent calls, calls per minute or the company's lines are used up"
        claimed = list(due.filter(timezone__in=zones).select_for_update(skip_locked=True)
                       .order_by(F("next_attempt_at").asc(nulls_first=True), "pk")[:room])
        placed = 0
        for contact in claimed:
            outcome = _place(campaign, contact, now)
            if outcome is None:
                return placed, campaign.status_note
            placed += outcome
        return placed, "" if placed else "no contact is due"


def due_contacts(campaign: Campaign, now: datetime):
    """The campaign's contacts waiting for a call that is due at ``now`` (whatever their local time)."""
    return Contact.objects.filter(campaign=campaign, status=Contact.Status.PENDING).filter(
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))


def waiting_reason(campaign: Campaign, now: datetime) -> str:
    """Why a running ``campaign`` places no call now by its dates and hours ("" when some contact may be called)."""
    why = dates_reason(campaign, now)
    if why:
        return why
    zones, why = open_zones(campaign, due_contacts(campaign, now).order_by().values_list("timezone", flat=True)
                            .distinct(), now)
    return "" if zones else why


def breaker_reason(campaign: Campaign, now: datetime) -> str:
    """The circuit breaker: why ``campaign`` must pause because most of its recent calls failed, or "".

    Recent: the last ``breaker_last_calls`` attempts that ended within ``breaker_minutes`` (and since
    staff last started or resumed it); at least ``breaker_min_calls`` of them, of which at least
    ``breaker_failed_percent`` % failed (the provider's or the runner's error; busy and no answer
    are people, not faults)."""
    if not campaign.breaker_failed_percent:
        return ""
    since = now - timedelta(minutes=campaign.breaker_minutes)
    if campaign.resumed_at and campaign.resumed_at > since:
        since = campaign.resumed_at
    recent = list(campaign.attempts.filter(settled_at__gt=since, settled_at__lte=now)
                  .order_by("-settled_at", "-pk").values_list("result", "note")[:campaign.breaker_last_calls])
    failed = [note for result, note in recent if result == Call.Status.FAILED]
    if len(recent) < campaign.breaker_min_calls or len(failed) * 100 < campaign.breaker_failed_percent * len(recent):
        return ""
    last = f" ({failed[0][:300]})" if failed[0] else ""
    return (f"paused by the circuit breaker: {len(failed)} of the last {len(recent)} calls failed within "
            f"{campaign.breaker_minutes} minutes{last}; fix the cause, then resume it")


def capacity(campaign: Campaign, now: datetime) -> int:
    """How many calls ``campaign`` may start now."""
    in_flight = campaign.attempts.filter(settled_at__isnull=True).count()
    room = campaign.max_concurrent_calls - in_flight
    recent = campaign.attempts.filter(placed_at__gt=now - timedelta(minutes=1)).count()
    room = min(room, campaign.calls_per_minute - recent)
    lines = campaign.company.max_lines
    if lines:
        # Calls older than the call time limit are leftovers (a crashed runner), not lines in use.
        since = now - timedelta(seconds=settings.CAMPAIGNS_CALL_TIMEOUT_SEC)
        busy = Call.objects.filter(company_id=campaign.company_id, direction=Call.Direction.OUTBOUND,
                                   status__in=LIVE, started_at__gt=since).count()
        room = min(room, lines - busy)
    return max(room, 0)


def _place(campaign: Campaign, contact: Contact, now: datetime) -> int | None:
    """Call one claimed contact: 1 placed, 0 not (the number is bad), None: the campaign was paused."""
    variables = {**({"name": contact.name} if contact.name else {}),
                 **({VOICEMAIL_MESSAGE: campaign.voicemail_message} if campaign.voicemail_message else {}),
                 **contact.variables}  # a contact's own voicemail_message column wins over the campaign's
    try:
        with transaction.atomic():
            call = request_call(bot=campaign.bot, to=contact.phone, from_number=campaign.from_number,
                                variables=variables)
    except CallRequestError as exc:
        if exc.field == "to":
            contact.status, contact.note, contact.next_attempt_at = Contact.Status.FAILED, str(exc), None
            contact.save(update_fields=["status", "note", "next_attempt_at", "updated_at"])
            return 0
        # The bot or the caller id: every call would fail the same way until staff fix it.
        campaign.status, campaign.status_note = Campaign.Status.PAUSED, f"paused by the dialler: {exc}"
        campaign.save(update_fields=["status", "status_note", "updated_at"])
        logger.warning("campaign %s paused: %s", campaign.pk, exc)
        return None
    contact.attempts_made += 1
    contact.status, contact.next_attempt_at, contact.note = Contact.Status.CALLING, None, ""
    contact.save(update_fields=["attempts_made", "status", "next_attempt_at", "note", "updated_at"])
    Attempt.objects.create(campaign=campaign, contact=contact, call=call, number=contact.attempts_made, placed_at=now)
    return 1


def finish(*, campaign: Campaign, now: datetime, note: str = "") -> None:
    """Mark ``campaign`` completed; contacts still waiting are skipped with ``note``."""
    campaign.contacts.filter(status=Contact.Status.PENDING).update(
        status=Contact.Status.SKIPPED, note=note or "the campaign was completed", next_attempt_at=None,
        updated_at=now)
    campaign.status, campaign.finished_at = Campaign.Status.COMPLETED, now
    campaign.save(update_fields=["status", "finished_at", "updated_at"])


def _company_lock(company_id: int) -> bool:
    """This transaction's hold on the company's dialling (no wait: a busy company is dialled next tick)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s::int4, (%s %% 2147483647)::int4)",
                       [LOCK_NAMESPACE, company_id])
        return cursor.fetchone()[0]
