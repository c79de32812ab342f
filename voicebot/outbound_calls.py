"""Outbound calls: asking for one, and following its provider's status until it ends.

``request_call`` stores the call as ``queued`` (direction outbound, with its variables) and,
on commit, queues the dial task by name (``DIAL_TASK``, in ``telephony.tasks``: the REST call
to the provider, or the INVITE from the SIP endpoint). From then on the provider's status
callbacks move it through ``ringing`` and ``in-progress`` (``record_status``); the call's
conversation is stored at hang-up into the same row (``pipelines.call_store``); a call that
never connects ends with the provider's final status (busy, no-answer, failed, canceled).
"""

from __future__ import annotations

import logging
import re

from django.db import transaction
from django.utils import timezone

from voicebot.celery import app as celery_app
from voicebot.models import Bot, Call, PhoneNumber
from voicebot.phone import BadPhoneNumber, to_e164

logger = logging.getLogger(__name__)

DIAL_TASK = "telephony.tasks.dial_call"
DIAL_REQUESTED_KEY = "dial_requested_at"  # Call.metrics: when the dial task handed the call to its provider
# Providers the platform can place calls through (Exotel and Daily only answer here).
DIALING_PROVIDERS = (PhoneNumber.Provider.TWILIO, PhoneNumber.Provider.TELNYX, PhoneNumber.Provider.PLIVO,
                     PhoneNumber.Provider.SIP)
EXTENSION = re.compile(r"[0-9*#]{1,6}")  # SIP only: a PBX extension ("200"), not a phone number
BROKER_TIMEOUT_SEC = 0.5
FAST_FAIL_TRANSPORT = {"max_retries": 0, "socket_connect_timeout": BROKER_TIMEOUT_SEC,
                       "socket_timeout": BROKER_TIMEOUT_SEC}
# A status moves forward only: a late "ringing" never undoes "in-progress".
_ORDER = {Call.Status.QUEUED: 0, Call.Status.RINGING: 1, Call.Status.IN_PROGRESS: 2}


class CallRequestError(ValueError):
    """A call that cannot be placed; ``field`` names the input that was wrong."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


def caller_id_for(bot: Bot, from_number: str = "") -> PhoneNumber:
    """The number the call comes from: ``from_number`` if it is one of the company's dialling
    numbers, else the bot's own first active one."""
    numbers = PhoneNumber.objects.filter(company_id=bot.company_id, active=True, provider__in=DIALING_PROVIDERS)
    if from_number:
        number = numbers.filter(number=from_number.strip()).first()
        if number is None:
            raise CallRequestError("from", f"{from_number!r} is not an active Twilio, Telnyx, Plivo or SIP number "
                                           f"of {bot.company.name}")
        return number
    number = numbers.filter(bot=bot).order_by("pk").first()
    if number is None:
        raise CallRequestError("from", f"bot {bot.slug!r} has no active Twilio, Telnyx, Plivo or SIP number to "
                                       "call from; add one or name one in 'from'")
    return number


def request_call(*, bot: Bot, to: str, from_number: str = "", variables: dict | None = None) -> Call:
    """Store a queued outbound call and queue its dialling; raises ``CallRequestError``."""
    if not bot.active:
        raise CallRequestError("bot", f"bot {bot.slug!r} is inactive")
    variables = dict(variables or {})
    if not all(isinstance(key, str) for key in variables):
        raise CallRequestError("variables", "variable names must be strings")
    number = caller_id_for(bot, from_number)
    sip = number.provider == PhoneNumber.Provider.SIP
    if sip and ("@" in to or EXTENSION.fullmatch(to.strip())):
        callee = to.strip()  # a SIP URI or a PBX extension: dialled as it is
    else:
        try:
            callee = to_e164(to, country=bot.company.country)
        except BadPhoneNumber as exc:
            raise CallRequestError("to", str(exc)) from None
    call = Call.objects.create(
        company_id=bot.company_id, bot=bot, transport=number.provider, direction=Call.Direction.OUTBOUND,
        from_number=number.number, to_number=callee, status=Call.Status.QUEUED, started_at=timezone.now(),
        variables={key: "" if value is None else str(value) for key, value in variables.items()},
    )
    transaction.on_commit(lambda: queue_dial(call.pk), robust=True)
    return call


def queue_dial(call_id: int) -> bool:
    """Queue the dialling; with the broker away (one short try), the call ends as failed, saying why,
    rather than waiting forever as queued."""
    try:
        with celery_app.connection_for_write(connect_timeout=BROKER_TIMEOUT_SEC,
                                             transport_options=FAST_FAIL_TRANSPORT) as connection:
            celery_app.send_task(DIAL_TASK, args=[call_id], connection=connection, retry=False, ignore_result=True)
        return True
    except Exception as exc:  # noqa: BLE001 - the broker being down must not lose the call's record
        logger.error("could not queue %s for call %s (%s: %s)", DIAL_TASK, call_id, type(exc).__name__, exc)
        record_status(call_id=call_id, status=Call.Status.FAILED,
                      note=f"the call could not be queued for dialling: {type(exc).__name__}: {exc}")
        return False


def record_status(*, call_id: int, status: str, external_id: str = "", note: str = "") -> Call | None:
    """The provider says where an outbound call is (its status callback, or the dialler's answer).

    Forward only, and never over a final status: the conversation stored at hang-up
    (completed, voicemail, transferred) wins over the provider's later "completed". A call
    whose conversation is stored has an end reason; ``pipelines.call_store`` fills only rows
    without one.
    """
    with transaction.atomic():
        call = Call.objects.select_for_update().filter(pk=call_id, direction=Call.Direction.OUTBOUND).first()
        if call is None:
            return None
        if external_id and not call.external_id:
            call.external_id = external_id
        if call.status in Call.FINAL_STATUSES:
            call.save(update_fields=["external_id"])
            return call
        now = timezone.now()
        if status in Call.FINAL_STATUSES:
            # "completed" after an answer: the runner stores the conversation into this row
            # (its end reason, and a status of its own such as voicemail); until then it reads completed.
            call.status = status
            call.ended_at = call.ended_at or now
            if status != Call.Status.COMPLETED:
                call.end_reason = Call.EndReason.NOT_ANSWERED
        elif _ORDER.get(status, -1) > _ORDER.get(call.status, -1):
            call.status = status
            if status == Call.Status.IN_PROGRESS and call.answered_at is None:
                call.answered_at = now
        if note:
            call.metrics = {**call.metrics, "notes": [*call.metrics.get("notes", []), note]}
        call.save()
        return call
