"""python manage.py runbots [--host H] [--port 8765]: the call runner (ASGI under uvicorn)."""

from __future__ import annotations

import os

from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = ("Run the call runner: /healthz, provider webhooks and media streams, browser calls, the SIP endpoint "
            "(VOICEBOT_SIP_*); models loaded once.")

    def add_arguments(self, parser):
        parser.add_argument("--host", default=settings.RUNNER_HOST)
        parser.add_argument("--port", type=int, default=settings.RUNNER_PORT)
        parser.add_argument("--ws-ping-interval", type=float, default=20.0,
                            help="Seconds between websocket pings; 0: none (Asterisk builds older than "
                                 "January 2026 hang up chan_websocket calls on a ping).")

    def handle(self, *args, **opts):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("DO_NOT_TRACK", "true")
        import uvicorn

        from pipelines.live.runner import create_app
        from telephony import listeners
        from voicebot import logs

        logs.quiet_loguru()  # Pipecat's DEBUG lines only with VOICEBOT_VERBOSE=1
        uvicorn.run(create_app(listeners=listeners.from_settings), host=opts["host"], port=opts["port"],
                    log_level="info", ws="websockets", ws_ping_interval=opts["ws_ping_interval"] or None,
                    access_log=logs.verbose())
