"""python manage.py simulate_call --bot SLUG --audio A.wav [--audio B.wav ...] [--out DIR] --json"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from pipelines.config import BotConfig, BotNotFound


class Command(BaseCommand):
    help = "Simulate a call: each --audio WAV is one caller turn, played in real time through the real pipeline."

    def add_arguments(self, parser):
        parser.add_argument("--bot", required=True, help="bot slug")
        parser.add_argument("--audio", action="append", required=True, help="a caller turn (16-bit WAV); repeat")
        parser.add_argument("--out", help="folder for the bot's audio and the call recording")
        parser.add_argument("--json", action="store_true", help="print one JSON object (the default output too)")
        parser.add_argument("--no-store", action="store_true", help="do not store the call")

    def handle(self, *args, **opts):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        for path in opts["audio"]:
            if not Path(path).is_file():
                raise CommandError(f"--audio {path}: no such file")
        try:
            config = BotConfig.for_slug(opts["bot"])
        except BotNotFound as exc:
            raise CommandError(str(exc)) from exc

        from pipelines.live.simulate import call_report, simulate_call
        from pipelines.model_registry import registry

        registry.preload(stt_models=(config.stt_model,), voices=(config.voice,))
        call = asyncio.run(simulate_call(config, opts["audio"], store=not opts["no_store"]))
        report = call_report(call)
        if opts["out"]:
            out = Path(opts["out"])
            out.mkdir(parents=True, exist_ok=True)
            (out / "bot.wav").write_bytes(call.recorder.bot_wav_bytes())
            if call.record and call.record.recording_wav:
                (out / "call.wav").write_bytes(call.record.recording_wav)
            report["out"] = str(out)
        self.stdout.write(json.dumps(report))
