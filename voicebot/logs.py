"""Quiet logs by default: the platform's own INFO lines, only warnings from the libraries.

``python_levels()`` is the ``loggers`` part of settings.LOGGING: HTTP client request lines
(httpx logs every request at INFO, a readiness probe's 503 included), Django's request log,
Celery's per-task lines. ``quiet_loguru()`` does the same for Pipecat, which logs through
loguru at DEBUG (every ICE candidate, every frame processor). ``VOICEBOT_VERBOSE=1`` (or
``manage.py demo --verbose``) keeps everything.
"""

from __future__ import annotations

import os
import sys

NOISY_LOGGERS = ("httpx", "httpcore", "django.server", "celery.worker.strategy", "celery.app.trace",
                 "aioice", "aiortc", "asyncio", "urllib3", "onnxruntime", "faster_whisper")
LOGURU_QUIET_PREFIXES = ("pipecat",)


def verbose() -> bool:
    return os.environ.get("VOICEBOT_VERBOSE", "").strip().lower() in ("1", "true", "yes")


def python_levels() -> dict:
    return {} if verbose() else {name: {"level": "WARNING"} for name in NOISY_LOGGERS}


def quiet_loguru() -> None:
    """Pipecat's loguru lines at WARNING and up; our own modules that use loguru at INFO."""
    if verbose():
        return
    from loguru import logger

    def keep(record) -> bool:
        if record["name"].startswith(LOGURU_QUIET_PREFIXES):
            return record["level"].no >= logger.level("WARNING").no
        return record["level"].no >= logger.level("INFO").no

    logger.remove()
    logger.add(sys.stderr, filter=keep)
