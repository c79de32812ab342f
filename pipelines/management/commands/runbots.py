"""python manage.py runbots [--host H] [--port 8765]: the call runner (ASGI under uvicorn)."""

from __future__ import annotations

import os

from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Run the call runner: /healthz, Twilio voice webhook and media streams; models loaded once."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=settings.RUNNER_HOST)
        parser.add_argument("--port", type=int, default=settings.RUNNER_PORT)

    def handle(self, *args, **opts):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("DO_NOT_TRACK", "true")
        import uvicorn

        from pipelines.live.runner import create_app

        uvicorn.run(create_app(), host=opts["host"], port=opts["port"], log_level="info", ws="websockets")
