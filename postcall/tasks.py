"""Celery tasks of the post-call work. All are idempotent and acknowledged late.

``acks_late`` and ``reject_on_worker_lost`` (settings) put a task back on the
queue when its worker dies; the work below can then run twice without writing
or sending anything twice.
"""

from __future__ import annotations

import logging

from celery import shared_task
from django.db import DatabaseError

log = logging.getLogger(__name__)


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=5)
def process_call(self, call_id: int, force: bool = False):
    """Summary, outcome, lead and analytics of a stored call; then its webhooks."""
    from postcall.processing import process

    try:
        outcome = process(call_id, force=force)
    except DatabaseError as exc:  # the database blinked: try again shortly
        raise self.retry(exc=exc, countdown=10 * (self.request.retries + 1))
    return outcome.result if outcome else None


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=None)
def deliver_webhook(self, delivery_id: str, attempt: int = 1, replay: bool = False):
    """Attempt ``attempt`` of a delivery; on failure, queue the next one after the backoff delay.

    The attempt number travels with the message, so a duplicate message (a
    redelivery after a worker died) never sends one attempt twice.
    """
    from postcall.webhooks import attempt as make_attempt

    from django.conf import settings

    delay = make_attempt(delivery_id, attempt, replay=replay)
    if delay is not None and delay <= settings.POSTCALL_WEBHOOK_MAX_COUNTDOWN_SEC:
        raise self.retry(args=(delivery_id, attempt + 1, False), kwargs={}, countdown=delay)
    # Longer waits are not held as broker ETAs (Redis would hand them out again after its
    # visibility timeout): requeue_stalled sends the attempt once next_attempt_at is due.
    return attempt


@shared_task(acks_late=True, reject_on_worker_lost=True, autoretry_for=(OSError, DatabaseError), retry_backoff=60,
             max_retries=8)
def send_scheduled_report(schedule_id: int):
    """Celery beat's entry point: the last complete period's report of a schedule's company.

    A mail server or database that is down (OSError covers SMTP errors) is retried with backoff;
    the report is stored once and e-mailed once, however often this runs.
    """
    from postcall.models import ReportSchedule
    from postcall.reports import send_report

    schedule = ReportSchedule.objects.select_related("company").filter(pk=schedule_id, active=True).first()
    if schedule is None:
        return None
    return send_report(schedule.company, schedule.period).pk


@shared_task(acks_late=True, reject_on_worker_lost=True)
def requeue_stalled(grace_sec: int = 120, calls_after_sec: int = 300, calls_within_days: int = 2):
    """Beat, every minute: the safety net that makes "nothing is lost" hold.

    - deliveries whose next attempt is due (long backoffs are scheduled this way, and
      a worker that died between recording a failed attempt and queuing the retry
      leaves one behind) or that were never tried;
    - calls that ended a while ago but have no outcome (process_call was never queued,
      e.g. Redis was down when the call was stored).

    Queuing work twice is harmless: each attempt is made at most once and
    process_call writes each row once.
    """
    from datetime import timedelta

    from django.db.models import Q
    from django.utils import timezone

    from postcall.models import WebhookDelivery
    from voicebot.models import Call

    now = timezone.now()
    cutoff = now - timedelta(seconds=grace_sec)
    due = WebhookDelivery.objects.filter(
        Q(status=WebhookDelivery.Status.PENDING, attempts=0, created_at__lt=cutoff)
        | Q(status=WebhookDelivery.Status.RETRYING, next_attempt_at__lt=cutoff))
    deliveries = 0
    for pk, attempts in due.values_list("pk", "attempts")[:1000]:
        deliver_webhook.delay(str(pk), attempts + 1)
        deliveries += 1
    calls = 0
    unprocessed = Call.objects.filter(outcome__isnull=True, ended_at__lt=now - timedelta(seconds=calls_after_sec),
                                      ended_at__gt=now - timedelta(days=calls_within_days))
    for pk in unprocessed.values_list("pk", flat=True)[:500]:
        process_call.delay(pk)
        calls += 1
    return {"deliveries": deliveries, "calls": calls}
