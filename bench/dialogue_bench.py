"""Benchmark of the scenario engine: how fast scripted turns are, and how well paraphrases match.

    .venv/bin/python bench/dialogue_bench.py [--conversations 20]

Prints JSON, one figure per line. No database, no LLM: scripted turns never use them.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

import django

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "voicebot.settings")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
django.setup()  # only to import the demo scenarios; the engine itself needs no Django

from pipelines.dialogue.embedder import default_embedder  # noqa: E402
from pipelines.dialogue.engine import DialogueEngine  # noqa: E402
from pipelines.dialogue.matcher import DEFAULT_THRESHOLD  # noqa: E402
from voicebot.management.commands.seed_demo import DEMO_SCENARIOS  # noqa: E402
from voicebot.scenarios import validate_scenarios  # noqa: E402

BOOKING_WALK = ["I'd like to book an appointment", "a manicure please", "next Tuesday", "half past four",
                "five five five", "two one two five five five oh one two three", "actually make it Wednesday",
                "yes"]
# Paraphrases of a booking request with no trigger keyword, and requests that are not bookings.
BOOKING_PARAPHRASES = [
    "can I get my nails done Friday?", "could you fit me in for a blow-dry on Thursday",
    "can I have my hair cut on Monday", "I need my nails done before the wedding",
    "is there a free slot for a pedicure tomorrow", "I want to come in for a haircut next week",
    "do you have time for a colour on Saturday morning", "could I pop in for a manicure later today",
]
NOT_BOOKINGS = [
    "do you sell gift cards?", "what are your opening hours", "where are you located", "is there parking nearby",
    "hello", "blorp zanzibar quux", "what is the weather like", "do you use vegan nail polish",
]


def percentile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def emit(name, value, unit=""):
    print(json.dumps({"metric": name, "value": round(value, 3) if isinstance(value, float) else value,
                      "unit": unit}))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--conversations", type=int, default=20)
    parser.add_argument("--llm-url", default="", help="an OpenAI-compatible /v1 URL: also time LLM-answered turns")
    parser.add_argument("--llm-model", default="smollm2-135m-instruct")
    args = parser.parse_args()

    config = SimpleNamespace(scenarios=validate_scenarios(DEMO_SCENARIOS), greeting="Hello!", fallback_phrase="Sorry?",
                             max_turns=50, transfer_number="", company_country="US",
                             company_timezone="America/New_York", use_knowledge=False, tools=(), slug="bench")
    started = time.perf_counter()
    embed = default_embedder()
    emit("embedder_load_s", time.perf_counter() - started, "s")
    clock = lambda: datetime(2026, 11, 22, 15, 0, tzinfo=timezone.utc)  # noqa: E731

    scripted_ms, similarity_ms = [], []
    for _ in range(args.conversations):
        engine = DialogueEngine(config, embed=embed, clock=clock)
        engine.start()
        for text in BOOKING_WALK:
            t0 = time.perf_counter()
            reply = engine.handle(text)
            scripted_ms.append((time.perf_counter() - t0) * 1000)
            assert reply.scripted, text
        engine = DialogueEngine(config, embed=embed, clock=clock)
        engine.start()
        t0 = time.perf_counter()
        engine.handle(BOOKING_PARAPHRASES[0])
        similarity_ms.append((time.perf_counter() - t0) * 1000)
    emit("scripted_turn_ms_median", statistics.median(scripted_ms), "ms")
    emit("scripted_turn_ms_p95", percentile(scripted_ms, 0.95), "ms")
    emit("similarity_trigger_turn_ms_median", statistics.median(similarity_ms), "ms")
    emit("similarity_trigger_turn_ms_p95", percentile(similarity_ms, 0.95), "ms")

    matcher = DialogueEngine(config, embed=embed, clock=clock).matcher
    hits = sum(1 for p in BOOKING_PARAPHRASES if (m := matcher.match(p)) and m.scenario == "booking")
    false = sum(1 for p in NOT_BOOKINGS if (m := matcher.match(p)) and m.scenario == "booking")
    emit("similarity_threshold", DEFAULT_THRESHOLD)
    emit("paraphrase_recall", hits / len(BOOKING_PARAPHRASES), "ratio")
    emit("non_booking_false_matches", false / len(NOT_BOOKINGS), "ratio")

    if args.llm_url:
        from pipelines.dialogue.llm import ChatLLM

        llm = ChatLLM(args.llm_url, args.llm_model, system_prompt="You are a salon receptionist.", max_tokens=60)
        facts = ["A manicure costs 30 dollars and takes 45 minutes."]
        llm_ms = []
        for question in ("How much is a manicure?", "How long does a manicure take?", "Is a manicure expensive?"):
            t0 = time.perf_counter()
            llm.answer([], question, facts)
            llm_ms.append((time.perf_counter() - t0) * 1000)
        emit("llm_turn_ms_median", statistics.median(llm_ms), "ms")
        emit("llm_to_scripted_turn_ratio", statistics.median(llm_ms) / statistics.median(scripted_ms), "ratio")


if __name__ == "__main__":
    main()
