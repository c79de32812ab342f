"""The demo salon booking by simulated voice: real Whisper, Piper, Silero, MiniLM, through the live pipeline.

The caller's turns are Piper-spoken WAVs (tests/data/booking_*.wav). The scenario
engine asks the fields in order, the caller answers, confirms, and the bot's
``booking_created`` tool receives the normalised fields, signed; the call record
carries them to post-call.
"""

import json
from datetime import date
from io import StringIO

import pytest
from django.core.management import call_command

from tests.calls.conftest import audio
from tests.dialogue.conftest import RECEIVER_SECRET, demo_bot, receiver  # noqa: F401 (fixtures)
from voicebot.models import Call
from voicebot.signing import SIGNATURE_HEADER, verify

pytestmark = [pytest.mark.models]

TURNS = ["booking_1_start.wav", "booking_2_service.wav", "booking_3_date.wav", "booking_4_time.wav",
         "booking_5_phone.wav", "booking_6_yes.wav"]


# Whisper tiny.en on a loaded 2-core box occasionally mishears a digit (4 of 5 runs
# were exact here); one rerun keeps the suite honest without hiding a broken flow.
@pytest.mark.flaky(reruns=1)
@pytest.mark.django_db(transaction=True)
def test_demo_salon_booking_by_voice(llm_server, loaded_models, demo_bot, receiver, queued):  # noqa: F811
    out = StringIO()
    args = ["simulate_call", "--bot", demo_bot.slug, "--json"]
    for name in TURNS:
        args += ["--audio", audio(name)]
    call_command(*args, stdout=out)
    report = json.loads(out.getvalue())
    transcript = "\n".join(f"{t['role']}: {t['text']}" for t in report["turns"])

    assert len(receiver.requests) == 1, transcript
    request = receiver.requests[0]
    assert verify(RECEIVER_SECRET, request["body"], request["headers"][SIGNATURE_HEADER])
    fields = json.loads(request["body"])["fields"]
    assert fields["service"] == "manicure", transcript
    assert date.fromisoformat(fields["date"]).weekday() == 4, transcript  # a Friday
    assert fields["time"] == "16:30", transcript
    assert fields["phone"] == "+12125550123", transcript

    call = Call.objects.get(pk=report["call_id"])
    assert call.transport == "sim" and call.scenario == "booking"
    assert call.collected_fields == fields
    assert call.metrics["scenario_engine"]["completed"] == ["booking"]
    bot_lines = [t["text"] for t in report["turns"] if t["role"] == "bot"]
    assert bot_lines[0] == "Hello! Elegant beauty salon. How can I help?"
