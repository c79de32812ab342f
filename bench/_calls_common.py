"""Shared set-up for the live-call benchmarks: Django, the models, an LLM endpoint, a bot."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "voicebot.settings")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("DO_NOT_TRACK", "true")

import django  # noqa: E402

django.setup()

import httpx  # noqa: E402
import numpy as np  # noqa: E402
from loguru import logger  # noqa: E402

logger.remove()
logger.add(sys.stderr, level=os.environ.get("BENCH_LOG_LEVEL", "WARNING"))

from pipelines.config import BotConfig  # noqa: E402

DATA = ROOT / "tests" / "data"
TURNS = [DATA / "caller_hours.wav", DATA / "caller_price.wav", DATA / "caller_book.wav"]


def bench_config() -> BotConfig:
    """A bot held in memory (the benchmark needs no database rows and stores nothing)."""
    return BotConfig(
        bot_id=0, company_id=0, slug="bench", name="Bench desk", company_name="Bench Dental",
        company_timezone="UTC", company_country="US", language="en",
        greeting="Hello, Bench Dental, how can I help?",
        system_prompt="You are the receptionist of Bench Dental. Open 8am to 6pm on weekdays. A cleaning costs 90 dollars.",
        voice="", stt_model="", llm_model="", temperature=0.3, max_tokens=60,
        fallback_phrase="Sorry, could you say that again?", max_turns=50, silence_timeout_sec=30.0,
    )


def llm_url() -> tuple[str, subprocess.Popen | None]:
    """VOICEBOT_LLM_BASE_URL / Ollama if one answers, else the bundled llama.cpp server on a free port."""
    from voicebot import llm_endpoint

    url = llm_endpoint.base_url()
    try:
        if httpx.get(url + "/models", timeout=1).status_code == 200:
            return url, None
    except httpx.HTTPError:
        pass
    return llm_endpoint.start_embedded_server()  # VOICEBOT_LLM_EMBEDDED_THREADS, 1 by default


def stats(values: list[float]) -> dict:
    values = [v for v in values if v is not None]
    if not values:
        return {"n": 0}
    return {"n": len(values), "median": round(float(np.median(values))), "p95": round(float(np.percentile(values, 95))),
            "min": round(min(values)), "max": round(max(values))}


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]
