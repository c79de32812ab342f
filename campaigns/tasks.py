"""Celery tasks of the campaigns: beat's tick (every 10 s, see migration 0002)."""

from __future__ import annotations

from celery import shared_task


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def tick():
    """Settle ended attempts and place the calls there is room for.

    Safe to run twice or at once on several workers: contacts are claimed with SKIP LOCKED,
    campaigns and companies are dialled by one worker at a time, attempts settled once.
    """
    from campaigns.dialer import tick as run

    return run().as_dict()
