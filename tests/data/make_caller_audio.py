"""Regenerate the caller WAVs in tests/data with the bundled Piper voice (16 kHz mono, padded)."""

import sys
import wave
from pathlib import Path

import numpy as np

LINES = {
    "caller_hours.wav": "Hi, what are your opening hours?",
    "caller_book.wav": "Can I book an appointment for tomorrow morning?",
    "caller_price.wav": "How much does a cleaning cost?",
    "caller_bye.wav": "Thank you, goodbye.",
    # A price from the demo salon's price list (tests/calls/test_voice_knowledge.py).
    "caller_gel_price.wav": "What is the price of a gel manicure?",
    "caller_human.wav": "Please transfer me to a human.",
    # A booking with the demo salon, turn by turn (tests/dialogue/test_voice_booking.py).
    "booking_1_start.wav": "Hello, I would like to book an appointment.",
    "booking_2_service.wav": "A manicure, please.",
    "booking_3_date.wav": "On Friday.",
    "booking_4_time.wav": "Half past four.",
    "booking_5_phone.wav": "Two one two, five five five, zero one two three.",
    "booking_6_yes.wav": "Yes, that is right.",
    # Chromium's fake microphone plays from the moment the page asks for it: this one
    # waits out the greeting (tests/calls/test_browser_call.py).
    "caller_hours_after_greeting.wav": "Hi, what are your opening hours?",
}
LEADING_SILENCE_SECS = {"caller_hours_after_greeting.wav": 6.0}


def main(out_dir: Path) -> None:
    import os

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "voicebot.settings")
    import django

    django.setup()
    from piper import SynthesisConfig

    from pipelines.model_registry import registry

    voice = registry.piper("")
    rate = voice.config.sample_rate
    only = set(sys.argv[2:])
    for name, text in LINES.items():
        if only and name not in only:
            continue
        # Digits are spoken slowly, as callers do, so that tiny.en hears each one.
        config = SynthesisConfig(length_scale=1.35 if "phone" in name else None)
        chunks = voice.synthesize(text, syn_config=config)
        pcm = np.concatenate([np.frombuffer(c.audio_int16_bytes, dtype=np.int16) for c in chunks])
        n = int(len(pcm) * 16000 / rate)
        pcm = np.interp(np.linspace(0, len(pcm) - 1, n), np.arange(len(pcm)), pcm).astype(np.int16)
        lead = int(16000 * LEADING_SILENCE_SECS.get(name, 0.3))
        pcm = np.concatenate([np.zeros(lead, np.int16), pcm, np.zeros(16000, np.int16)])
        with wave.open(str(out_dir / name), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(16000)
            w.writeframes(pcm.tobytes())


if __name__ == "__main__":
    # make_caller_audio.py [OUT_DIR [NAME.wav ...]]
    main(Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent))
