"""Signed webhook deliveries.

Each event for each active endpoint that subscribes to it becomes one
``WebhookDelivery`` (unique per endpoint, event and subject, so queuing an
event twice sends it once). Every POST carries::

    X-Voicebot-Event: call.ended
    X-Voicebot-Delivery: <the delivery's uuid, the same on every retry>
    X-Voicebot-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>

A receiver verifies it with ``verify_signature`` (see README, "Webhooks").
"""

from __future__ import annotations

import time
import uuid
from datetime import timedelta

import httpx
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from postcall.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from voicebot import outbound, signing

# A refused URL: the guarded client's error (the old name kept for callers and tests).
WebhookUrlError = outbound.OutboundRefused


def check_url(url: str, resolve: bool = True) -> None:
    """Raise WebhookUrlError saying what is wrong with ``url`` as a webhook target (see voicebot.outbound)."""
    outbound.check_url(url, resolve_host=resolve)


# --- Signing: voicebot.signing (shared with bot tools) ------------------------------------

def verify_signature(secret: str, header: str, body: bytes, tolerance_sec: int = 300, now: float | None = None) -> bool:
    """What a receiver does (see README, "Webhooks")."""
    return signing.verify(secret, body, header, tolerance_sec=tolerance_sec, now=now)


# --- Retry schedule ----------------------------------------------------------------------

def retry_delay(attempt: int) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based): exponential, capped."""
    delay = settings.POSTCALL_WEBHOOK_RETRY_FIRST_SEC * settings.POSTCALL_WEBHOOK_RETRY_FACTOR ** (attempt - 1)
    return min(delay, settings.POSTCALL_WEBHOOK_RETRY_MAX_SEC)


def retry_schedule() -> list[float]:
    """All delays, until their sum covers POSTCALL_WEBHOOK_RETRY_FOR_SEC (a day by default)."""
    delays, total = [], 0.0
    while total < settings.POSTCALL_WEBHOOK_RETRY_FOR_SEC:
        delays.append(retry_delay(len(delays) + 1))
        total += delays[-1]
    return delays


# --- Queuing and sending ------------------------------------------------------------------

def envelope(delivery_id, event: str, company, data: dict) -> dict:
    return {"id": str(delivery_id), "event": event, "created_at": timezone.now().isoformat(),
            "company": company.slug, "data": data}


def queue_event(company, event: str, event_key: str, data: dict) -> list[WebhookDelivery]:
    """Create (once) a delivery of ``event`` for each subscribed endpoint; send them after commit.

    Deliveries that already exist and have not been tried are queued again, so a
    task that died between creating and queuing them loses nothing; the send
    itself is guarded so that a duplicate message sends nothing twice.
    """
    from postcall.tasks import deliver_webhook

    deliveries = []
    for endpoint in WebhookEndpoint.objects.for_company(company).filter(active=True, events__contains=[event]):
        delivery = WebhookDelivery.objects.filter(endpoint=endpoint, event=event, event_key=event_key).first()
        if delivery is None:
            delivery = WebhookDelivery(endpoint=endpoint, event=event, event_key=event_key, payload={})
            delivery.payload = envelope(delivery.id, event, company, data)
            try:
                with transaction.atomic():
                    delivery.save(force_insert=True)
            except IntegrityError:  # a concurrent run of the same task queued it first
                delivery = WebhookDelivery.objects.get(endpoint=endpoint, event=event, event_key=event_key)
        deliveries.append(delivery)
    for delivery in deliveries:
        if delivery.status == WebhookDelivery.Status.PENDING and delivery.attempts == 0:
            transaction.on_commit(lambda pk=delivery.pk: deliver_webhook.delay(str(pk), 1))
    return deliveries


class AttemptResult:
    def __init__(self, response_code: int | None, error: str):
        self.response_code, self.error = response_code, error

    @property
    def ok(self) -> bool:
        return self.response_code is not None and 200 <= self.response_code < 300

    @property
    def retryable(self) -> bool:
        # Down, timing out or failing (5xx, 429, 408): try again. Other 4xx: the receiver refuses it.
        if self.error.startswith(("Not sent", "URL refused")):
            return False
        return not self.ok and (self.response_code is None or self.response_code >= 500
                                or self.response_code in (408, 429))


def http_client() -> outbound.GuardedClient:
    """The guarded client (one per worker process): checked, pinned, no redirects, bounded replies."""
    return outbound.client("Voicebot-Webhooks/1")


def post(delivery: WebhookDelivery) -> AttemptResult:
    """One POST of the delivery; what is stored is the status and, for a failure, a short excerpt."""
    endpoint = delivery.endpoint
    body = signing.body_bytes(delivery.payload)
    headers = signing.headers(endpoint.secret, body, delivery.event, str(delivery.id))
    if not endpoint.active:
        return AttemptResult(None, "Not sent: the endpoint is inactive.")
    try:
        response = http_client().post(endpoint.url, content=body, headers=headers,
                                      timeout=settings.POSTCALL_WEBHOOK_TIMEOUT_SEC)
    except (outbound.OutboundRefused, httpx.HTTPError) as exc:
        return AttemptResult(None, outbound.describe_error(exc))  # "URL refused: ..." is not retried
    return AttemptResult(response.status, response.error())


def attempt(delivery_id: str, number: int, replay: bool = False) -> float | None:
    """Make attempt ``number`` of a delivery, at most once; return the delay before a retry, or None.

    The row is locked for the attempt: a duplicate message for the same attempt
    waits, then finds it made and does nothing. A worker killed mid-attempt
    rolls back, and the redelivered message makes the attempt again.
    """
    with transaction.atomic():
        delivery = (WebhookDelivery.objects.select_for_update().select_related("endpoint", "endpoint__company")
                    .filter(pk=delivery_id).first())
        if delivery is None or delivery.attempts >= number:
            return None  # gone, or this attempt was already made
        if delivery.status == WebhookDelivery.Status.DELIVERED and not replay:
            return None
        started, clock = timezone.now(), time.monotonic()
        result = post(delivery)
        WebhookAttempt.objects.create(
            delivery=delivery, number=number, attempted_at=started, response_code=result.response_code,
            error=result.error, duration_ms=int((time.monotonic() - clock) * 1000), replay=replay)
        delivery.attempts = number
        delivery.last_response_code = result.response_code
        delivery.last_error = result.error
        delay = None
        if result.ok:
            delivery.status, delivery.delivered_at, delivery.next_attempt_at = (
                WebhookDelivery.Status.DELIVERED, timezone.now(), None)
        elif result.retryable and number <= len(retry_schedule()):
            delay = retry_delay(number)
            delivery.status = WebhookDelivery.Status.RETRYING
            delivery.next_attempt_at = timezone.now() + timedelta(seconds=delay)
        else:
            delivery.status, delivery.next_attempt_at = WebhookDelivery.Status.FAILED, None
        delivery.save()
        return delay


def send_test_event(endpoint: WebhookEndpoint) -> WebhookDelivery:
    """A ``webhook.test`` delivery to one endpoint, to check the receiver and its signature check."""
    from postcall.tasks import deliver_webhook

    delivery = WebhookDelivery(endpoint=endpoint, event="webhook.test", event_key=f"test:{uuid.uuid4().hex}",
                               payload={})
    delivery.payload = envelope(delivery.id, "webhook.test", endpoint.company,
                                {"message": "A test event from the Voicebot admin."})
    delivery.save(force_insert=True)
    transaction.on_commit(lambda: deliver_webhook.delay(str(delivery.pk), 1))
    return delivery


def replay(delivery: WebhookDelivery) -> None:
    """Send a delivery again now (same id and payload), e.g. after fixing the receiver."""
    from postcall.tasks import deliver_webhook

    transaction.on_commit(lambda: deliver_webhook.delay(str(delivery.pk), delivery.attempts + 1, True))

