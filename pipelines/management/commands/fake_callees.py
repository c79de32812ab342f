"""python manage.py fake_callees [--host 127.0.0.1] [--port 8790] [--busy NUMBER]... [--no-answer NUMBER]...
[--voicemail NUMBER]... [--fail NUMBER]...

A local stand-in for Twilio's cloud for outbound calls (pipelines/live/fake_twilio.py): the REST
API the platform places calls with, and callees who pick up and talk over Media Streams. Run
the platform with ``TWILIO_API_BASE_URL`` pointing here and the same ``TWILIO_ACCOUNT_SID`` and
``TWILIO_AUTH_TOKEN`` (this fake signs its webhooks with that token, as Twilio does).

Every number not named answers after a 1 s ring, says "Hello, this is Sam speaking.", waits for the bot, says "Yes,
that works for me, thank you. Goodbye.", waits for the bot and hangs up. The callees' lines are
synthesised once with the local Piper voice into ``<data dir>/fake_callees/``.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import wave
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

LINES = {
    "hello": "Hello, this is Sam speaking.",
    "agree": "Yes, that works for me, thank you. Goodbye.",
    "voicemail": "Hi, you have reached Sam. I can't take your call right now. Please leave a message after the tone.",
}


def callee_wavs(folder: Path) -> dict[str, Path]:
    """Each line as a 16 kHz mono WAV (TwilioCaller.say's input), synthesised once per text."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {name: folder / f"{name}-{hashlib.sha256(text.encode()).hexdigest()[:10]}.wav"
             for name, text in LINES.items()}
    missing = [name for name, path in paths.items() if not path.exists()]
    if missing:
        import numpy as np

        from pipelines.model_registry import registry

        voice = registry.piper("")
        rate = voice.config.sample_rate
        for name in missing:
            pcm = np.concatenate([np.frombuffer(c.audio_int16_bytes, dtype=np.int16)
                                  for c in voice.synthesize(LINES[name])])
            n = int(len(pcm) * 16000 / rate)
            pcm = np.interp(np.linspace(0, len(pcm) - 1, n), np.arange(len(pcm)), pcm).astype(np.int16)
            pcm = np.concatenate([np.zeros(3200, np.int16), pcm, np.zeros(8000, np.int16)])  # 0.2 s in, 0.5 s out
            partial = paths[name].with_suffix(".part")
            with wave.open(str(partial), "wb") as w:
                w.setnchannels(1)
                w.setsampwidth(2)
                w.setframerate(16000)
                w.writeframes(pcm.tobytes())
            partial.replace(paths[name])
    return paths


class Command(BaseCommand):
    help = "Serve a local fake of Twilio's cloud for outbound calls: its REST API and callees who talk."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8790)
        for flag, what in (("--busy", "is busy"), ("--no-answer", "rings out unanswered"),
                           ("--voicemail", "goes to voicemail (greeting, beep, recording)"),
                           ("--fail", "cannot be connected (failed)")):
            parser.add_argument(flag, action="append", default=[], metavar="NUMBER",
                                help=f"this number {what}; repeat for more")

    def handle(self, *args, **opts):
        from pipelines.live.fake_twilio import (
            Answers,
            Busy,
            Fails,
            FakeTwilioCloud,
            HangUp,
            NoAnswer,
            Say,
            Voicemail,
            WaitBot,
        )

        sid, token = settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN
        if not sid or not token:
            raise CommandError(
                "TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN must be set (any values, e.g. TWILIO_ACCOUNT_SID=AC"
                + "0" * 32 + " TWILIO_AUTH_TOKEN=local-secret): the fake checks the platform's REST calls with "
                "them and signs its webhooks with the token, so the platform must run with the same two.")

        logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per call event, not per request
        folder = Path(settings.DATA_DIR) / "fake_callees"
        self.stdout.write(f"Callee voices in {folder} (Piper, made once)...")
        wavs = callee_wavs(folder)

        cloud = FakeTwilioCloud(sid, token, on_event=self._print_event)
        cloud.default = Answers(ring_secs=1.0, script=[Say(str(wavs["hello"])), WaitBot(), Say(str(wavs["agree"])),
                                                       WaitBot(), HangUp()])
        for number in opts["busy"]:
            cloud.callee(number, Busy(ring_secs=1.0))
        for number in opts["no_answer"]:
            cloud.callee(number, NoAnswer(ring_secs=5.0))
        for number in opts["voicemail"]:
            cloud.callee(number, Voicemail(str(wavs["voicemail"]), ring_secs=1.0))
        for number in opts["fail"]:
            cloud.callee(number, Fails())
        try:
            url = cloud.start(host=opts["host"], port=opts["port"])
        except RuntimeError as exc:
            raise CommandError(f"{exc} (is the port taken? try --port)") from exc

        self.stdout.write(f"Fake Twilio cloud at {url}. Run the platform (runner and worker) with:")
        self.stdout.write(f"  TWILIO_API_BASE_URL={url}")
        self.stdout.write(f"  TWILIO_ACCOUNT_SID={sid} TWILIO_AUTH_TOKEN=<the same token>")
        for flag in ("busy", "no_answer", "voicemail", "fail"):
            for number in opts[flag]:
                self.stdout.write(f"  {number}: {flag.replace('_', '-')}")
        self.stdout.write("  any other number: answers, says hello, agrees, says goodbye and hangs up")
        self.stdout.write("One line per call event (sid, to, event). Ctrl-C stops.")
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
        finally:
            cloud.close()

    def _print_event(self, call, what: str) -> None:
        self.stdout.write(f"{call.sid} {call.to} {what}")
        self.stdout.flush()
