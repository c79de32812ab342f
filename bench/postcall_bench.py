"""Post-call benchmark: prints JSON, one figure per line.

    .venv/bin/python bench/postcall_bench.py [--calls 200] [--llm-samples 5] [--no-llm]

Uses the dev database (a throw-away company, deleted at the end). Figures:
process_call's work without the LLM (the deterministic part), the LLM summary
with the bundled model (its own llama.cpp server on a free port), one webhook
attempt to a local receiver, and a report over all the calls.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "voicebot.settings")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("DO_NOT_TRACK", "true")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import transaction  # noqa: E402
from django.utils import timezone  # noqa: E402

from postcall import processing, reports, summary, webhooks  # noqa: E402
from postcall.models import WebhookDelivery, WebhookEndpoint  # noqa: E402
from tests.postcall.conftest import BOOKING_SCENARIOS, BOOKING_TURNS  # noqa: E402
from tests.postcall.receiver import Receiver  # noqa: E402
from voicebot import llm_endpoint  # noqa: E402
from voicebot.models import Bot, Call, CallTurn, Company  # noqa: E402


def emit(name: str, value, unit: str = "", **extra) -> None:
    print(json.dumps({"bench": "postcall", "metric": name, "value": value, "unit": unit, **extra}), flush=True)


def stats(name: str, samples: list[float], unit: str) -> None:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    emit(f"{name}_median", round(statistics.median(ordered), 2), unit, n=len(ordered))
    emit(f"{name}_p95", round(p95, 2), unit, n=len(ordered))


def make_calls(bot: Bot, count: int) -> list[int]:
    now = timezone.now() - timedelta(days=1)
    calls = Call.objects.bulk_create([
        Call(company=bot.company, bot=bot, transport="twilio", from_number=f"+4930{i:07d}",
             started_at=now + timedelta(minutes=7 * i), ended_at=now + timedelta(minutes=7 * i, seconds=95),
             scenario="booking", collected_fields={"service": "cleaning", "date": "tuesday", "phone": "+491511"})
        for i in range(count)])
    CallTurn.objects.bulk_create([
        CallTurn(call=call, index=j, role=role, text=text, latency_ms=latency, interrupted=interrupted,
                 start_ms=j * 2500, end_ms=j * 2500 + 2000)
        for call in calls for j, (role, text, latency, interrupted) in enumerate(BOOKING_TURNS)])
    return [c.pk for c in calls]


def start_llm() -> tuple[subprocess.Popen, str]:
    url, proc = llm_endpoint.start_embedded_server()
    return proc, url


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--llm-samples", type=int, default=5)
    parser.add_argument("--no-llm", action="store_true")
    args = parser.parse_args()

    slug = f"bench-postcall-{uuid.uuid4().hex[:6]}"
    company = Company.objects.create(name=slug, slug=slug, timezone="Europe/Berlin")
    bot = Bot.objects.create(company=company, name="bench", slug=slug, scenarios=BOOKING_SCENARIOS)
    receiver = Receiver().start()
    settings.POSTCALL_WEBHOOK_ALLOW_PRIVATE = settings.OUTBOUND_ALLOW_PRIVATE = True  # loopback receivers
    llm_proc = None
    try:
        ids = make_calls(bot, args.calls)

        # 1. The deterministic work of process_call (LLM unreachable: fallback summary).
        os.environ["VOICEBOT_LLM_BASE_URL"] = "http://127.0.0.1:9/v1"
        llm_endpoint.base_url.cache_clear()
        samples = []
        for pk in ids[:50]:
            started = time.perf_counter()
            with transaction.atomic():
                processing.process(pk)
            samples.append((time.perf_counter() - started) * 1000)
        stats("process_call_without_llm_ms", samples, "ms")

        # 2. One webhook attempt (sign, POST to a local receiver, store the attempt).
        endpoint = WebhookEndpoint.objects.create(company=company, url=receiver.url, events=["call.ended"],
                                                  secret="bench")
        samples = []
        for i in range(50):
            delivery = WebhookDelivery.objects.create(endpoint=endpoint, event="call.ended", event_key=f"b:{i}",
                                                      payload={"data": {"call": {"id": i}, "transcript": ["x" * 2000]}})
            started = time.perf_counter()
            webhooks.attempt(str(delivery.pk), 1)
            samples.append((time.perf_counter() - started) * 1000)
        stats("webhook_attempt_ms", samples, "ms")
        emit("webhook_requests_received", len(receiver.requests), "requests")

        # 3. A report over all the calls.
        day = (timezone.now() - timedelta(days=1)).astimezone(company.tz).date()
        start, end = reports.period_bounds(company, "week", day)
        samples = []
        for _ in range(5):
            started = time.perf_counter()
            data = reports.figures(company, start, end)
            samples.append((time.perf_counter() - started) * 1000)
        stats("report_figures_ms", samples, "ms")
        emit("report_calls_counted", data["calls"], "calls")

        # 4. The LLM summary with the bundled model.
        if not args.no_llm:
            llm_proc, url = start_llm()
            os.environ["VOICEBOT_LLM_BASE_URL"] = url
            llm_endpoint.base_url.cache_clear()
            turns = list(CallTurn.objects.filter(call_id=ids[0]).order_by("index"))
            samples, from_llm = [], 0
            for _ in range(args.llm_samples):
                started = time.perf_counter()
                _, source = summary.summarize(turns, "booking", {}, 95.0)
                samples.append(time.perf_counter() - started)
                from_llm += source == "llm"
            stats("llm_summary_s", samples, "s")
            emit("llm_summary_accepted_ratio", round(from_llm / args.llm_samples, 2), "ratio")
    finally:
        receiver.stop()
        if llm_proc:
            llm_proc.terminate()
            llm_proc.wait(10)
        company.delete()
        Bot.objects.filter(slug=slug).delete()


if __name__ == "__main__":
    main()
