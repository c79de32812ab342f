"""python manage.py simulate_call --bot SLUG --audio A.wav [--audio B.wav ...] [--out DIR] --json

With ``--twilio RUNNER_URL`` the call goes to a running runner as a Twilio call does: the voice
webhook signed with the account's auth token (``TWILIO_AUTH_TOKEN``; under ``make demo`` the
demo's local one), then the Media Streams websocket its TwiML names.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from pipelines.config import BotConfig, BotNotFound

DEMO_TWILIO_TOKEN = "demo_twilio_auth_token"  # made by `manage.py demo` when TWILIO_AUTH_TOKEN is unset


class Command(BaseCommand):
    help = "Simulate a call: each --audio WAV is one caller turn, played in real time through the real pipeline."

    def add_arguments(self, parser):
        parser.add_argument("--bot", required=True, help="bot slug")
        parser.add_argument("--audio", action="append", required=True, help="a caller turn (16-bit WAV); repeat")
        parser.add_argument("--out", help="folder for the bot's audio and the call recording")
        parser.add_argument("--json", action="store_true", help="print one JSON object (the default output too)")
        parser.add_argument("--no-store", action="store_true", help="do not store the call")
        parser.add_argument("--twilio", metavar="RUNNER_URL",
                            help="call a running runner as Twilio does (signed webhook + media stream), "
                                 "e.g. http://127.0.0.1:8765")
        parser.add_argument("--to", help="with --twilio: the number to call (default: the bot's first Twilio number)")

    def handle(self, *args, **opts):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        for path in opts["audio"]:
            if not Path(path).is_file():
                raise CommandError(f"--audio {path}: no such file")
        try:
            config = BotConfig.for_slug(opts["bot"])
        except BotNotFound as exc:
            raise CommandError(str(exc)) from exc

        if opts["twilio"]:
            self.stdout.write(json.dumps(self.twilio_call(config, opts)))
            return

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

    def twilio_call(self, config: BotConfig, opts) -> dict:
        from django.conf import settings

        from pipelines.live.twilio_caller import TwilioCaller
        from voicebot import local_secret
        from voicebot.models import Call, PhoneNumber

        token = settings.TWILIO_AUTH_TOKEN
        if not token and (settings.DATA_DIR / DEMO_TWILIO_TOKEN).exists():  # make demo's runner verifies with it
            token = local_secret.secret(settings.DATA_DIR, DEMO_TWILIO_TOKEN)
        if not token:
            raise CommandError("set TWILIO_AUTH_TOKEN: the runner checks Twilio's signature with the account's token")
        to = opts["to"] or PhoneNumber.objects.routable().filter(
            bot_id=config.bot_id, provider=PhoneNumber.Provider.TWILIO).values_list("number", flat=True).first()
        if not to:
            raise CommandError(f"bot {config.slug!r} has no active Twilio number; add one or pass --to")

        async def call():
            try:
                caller = await TwilioCaller.dial(opts["twilio"], to=to, auth_token=token)
            except Exception as exc:  # noqa: BLE001 - say what the runner answered
                raise CommandError(f"the runner refused the call: {exc}") from exc
            await caller.wait_bot_done()
            for path in opts["audio"]:
                ended = await caller.say(path)
                await caller.wait_bot_done(since=ended, timeout=30)
            await caller.hang_up()
            return caller

        caller = asyncio.run(call())
        stored = None
        for _ in range(100):  # the runner stores the call at hang-up
            stored = Call.objects.filter(transport="twilio", external_id=caller.call_sid).first()
            if stored is not None:
                break
            time.sleep(0.2)
        return {"call_sid": caller.call_sid, "to": to, "bot_audio_sec": round(len(caller.bot_audio) / 16000, 1),
                "stored_call": stored.pk if stored else None,
                "turns": [{"role": t.role, "text": t.text} for t in stored.turns.order_by("index")] if stored else []}
