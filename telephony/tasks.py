"""The dial task: a queued outbound call handed to its provider (``voicebot.outbound_calls.DIAL_TASK``)."""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from telephony.outbound import runner_url
from telephony.providers import ADAPTERS
from telephony.providers.rest import DialRefused, ProviderNotConfigured
from voicebot.models import Call
from voicebot.outbound_calls import DIAL_REQUESTED_KEY, DIAL_TASK, record_status

logger = logging.getLogger(__name__)


def dialer_for(transport: str):
    """The provider adapter (or the SIP endpoint's dialer) that places calls for ``transport``."""
    if transport == "sip":
        from telephony.sip.outbound import SipDialer

        return SipDialer()
    adapter = ADAPTERS.get(transport)
    return adapter if adapter is not None and getattr(adapter, "outbound_path", "") else None


def _claim(call_id: int) -> Call | None:
    """The queued call, marked as being dialled, once: a task run again (a worker lost mid-dial) never
    dials a second time; such a call stays queued, with a note, instead of ringing someone twice."""
    with transaction.atomic():
        call = Call.objects.select_for_update().filter(pk=call_id, direction=Call.Direction.OUTBOUND).first()
        if call is None or call.status != Call.Status.QUEUED:
            return None
        if DIAL_REQUESTED_KEY in call.metrics:
            logger.error("outbound call %s: already handed to %s once (its answer was lost); not dialling again",
                         call_id, call.transport)
            return None
        call.metrics = {**call.metrics, DIAL_REQUESTED_KEY: timezone.now().isoformat()}
        call.save(update_fields=["metrics"])
        return call


@shared_task(name=DIAL_TASK, ignore_result=True)
def dial_call(call_id: int) -> str:
    """Ask the call's provider to place it; the status it ends in ("" if it was not this task's to dial)."""
    call = _claim(call_id)
    if call is None:
        return ""
    adapter = dialer_for(call.transport)
    if adapter is None:
        record_status(call_id=call_id, status=Call.Status.FAILED, note=f"{call.transport} cannot place calls")
        return Call.Status.FAILED
    try:
        external_id = adapter.dial(to=call.to_number, from_=call.from_number,
                                   answer_url=runner_url(adapter.outbound_path, call_id),
                                   status_url=runner_url(adapter.status_path, call_id),
                                   ring_timeout_sec=settings.OUTBOUND_RING_TIMEOUT_SEC)
    except (DialRefused, ProviderNotConfigured) as exc:
        logger.warning("outbound call %s to %s failed: %s", call_id, call.to_number, exc)
        record_status(call_id=call_id, status=Call.Status.FAILED, note=str(exc))
        return Call.Status.FAILED
    record_status(call_id=call_id, status=Call.Status.QUEUED, external_id=external_id)
    return Call.Status.QUEUED
