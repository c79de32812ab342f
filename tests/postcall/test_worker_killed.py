"""A worker SIGKILLed mid-task loses nothing, and a second worker finishes the work exactly once.

The whole worker (main process and pool child) is killed, as when a machine
dies. Its unacknowledged message (acks_late) comes back after the broker's
visibility timeout, 3 s in this test (tests/postcall/killable_worker.py, on
its own Redis database), and the next worker redoes the task; idempotent
writes and per-attempt guards make the redo produce each effect once.
"""

import uuid

import pytest
import redis

from postcall.models import CallOutcome, Lead, WebhookAttempt, WebhookDelivery
from postcall.tasks import process_call
from tests.postcall.conftest import (
    BOOKING_SCENARIOS, DEAD_LLM, KILL_TEST_BROKER, kill_worker, make_endpoint, start_worker, store_call, wait_until,
    wait_ready,
)
from voicebot.celery import app

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def worker_on_test_broker(queue, llm_url):
    env = {"CELERY_BROKER_URL": KILL_TEST_BROKER, "CELERY_RESULT_BACKEND": KILL_TEST_BROKER,
           "VOICEBOT_LLM_BASE_URL": llm_url}
    proc, node = start_worker(queue, env, app="tests.postcall.killable_worker", log_name=f"celery-{queue}.log")
    wait_ready(proc, node)
    return proc


def test_worker_killed_during_process_call_and_during_a_delivery(bot_a, receiver):
    bot_a.scenarios = BOOKING_SCENARIOS
    bot_a.save()
    queue = f"postcall-kill-{uuid.uuid4().hex[:6]}"
    redis.Redis.from_url(KILL_TEST_BROKER).delete(queue)
    slow_llm = receiver(default="hang")  # an LLM that never answers: process_call hangs in its first request
    hook = receiver(script=["hang"])  # the first webhook POST hangs, later ones get 200
    endpoint = make_endpoint(bot_a.company, hook.url, events=["call.ended"])
    call = store_call(bot_a)

    first = worker_on_test_broker(queue, slow_llm.url.removesuffix("/hook") + "/v1")
    second = third = None
    try:
        with app.connection_for_write(KILL_TEST_BROKER) as conn:
            process_call.apply_async((call.pk,), connection=conn, queue=queue)
        slow_llm.wait_for(1, timeout=30)
        kill_worker(first)  # mid process_call: nothing was committed
        assert not CallOutcome.objects.filter(call=call).exists()

        second = worker_on_test_broker(queue, DEAD_LLM)
        hook.wait_for(1, timeout=40)  # process_call redone; the delivery's first POST now hangs
        kill_worker(second)  # mid delivery: the attempt is rolled back
        delivery = WebhookDelivery.objects.get(endpoint=endpoint)
        assert delivery.attempts == 0 and delivery.status == "pending"

        third = worker_on_test_broker(queue, DEAD_LLM)
        wait_until(lambda: WebhookDelivery.objects.get(pk=delivery.pk).status == "delivered", timeout=40)
    finally:
        for proc in (first, second, third):
            if proc is not None and proc.poll() is None:
                kill_worker(proc)
        redis.Redis.from_url(KILL_TEST_BROKER).delete(queue)

    assert CallOutcome.objects.filter(call=call).count() == 1
    assert CallOutcome.objects.get(call=call).summary_source == "fallback"
    assert Lead.objects.filter(call=call).count() == 1
    assert WebhookDelivery.objects.filter(endpoint=endpoint).count() == 1
    attempts = list(WebhookAttempt.objects.filter(delivery=delivery))
    assert [(a.number, a.response_code) for a in attempts] == [(1, 200)]
    # The receiver saw the hung POST and the completed one: the same delivery id, so it can de-duplicate.
    assert len(hook.requests) == 2
    assert {r["headers"]["X-Voicebot-Delivery"] for r in hook.requests} == {str(delivery.pk)}
