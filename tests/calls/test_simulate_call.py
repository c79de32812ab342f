"""simulate_call: the real pipeline (Silero, Whisper, SmolLM2, Piper) over the file-driven transport."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from tests.calls.conftest import audio
from voicebot.models import Call

pytestmark = [pytest.mark.models]


@pytest.mark.django_db(transaction=True)
def test_simulated_call_answers_and_is_stored_once(llm_server, loaded_models, desk_bot, queued, tmp_path):
    loads_before = loaded_models.loads
    out = StringIO()
    call_command("simulate_call", "--bot", desk_bot.slug, "--audio", audio("caller_hours.wav"),
                 "--out", str(tmp_path / "out"), "--json", stdout=out)
    report = json.loads(out.getvalue())

    roles = [t["role"] for t in report["turns"]]
    assert roles[:3] == ["bot", "caller", "bot"], report
    assert report["turns"][0]["text"] == "Hello, Alpha Dental, how can I help?"
    assert "opening hours" in report["turns"][1]["text"].lower()
    reply = report["turns"][2]
    assert reply["text"].strip()
    for key in ("v2v_ms", "stt_ms", "llm_ttfb_ms", "tts_ttfb_ms"):
        assert reply[key] is not None and reply[key] > 0, (key, reply)
    assert reply["v2v_ms"] >= reply["stt_ms"]

    assert loaded_models.loads == loads_before, "a call must not load a model"
    call = Call.objects.get(pk=report["call_id"])
    assert call.transport == "sim" and call.bot_id == desk_bot.pk and call.end_reason == "caller_hangup"
    assert [t.role for t in call.turns.order_by("index")][:3] == ["bot", "caller", "bot"]
    assert call.recording.name.endswith(".wav") and call.recording.size > 8000
    assert Call.objects.count() == 1
    assert queued == [("postcall.tasks.process_call", [call.pk])]
    assert (tmp_path / "out" / "bot.wav").stat().st_size > 8000


@pytest.mark.django_db
def test_simulate_call_names_what_is_wrong(desk_bot, tmp_path):
    with pytest.raises(CommandError, match="no such file"):
        call_command("simulate_call", "--bot", desk_bot.slug, "--audio", str(tmp_path / "missing.wav"))
    with pytest.raises(CommandError, match="no active bot with slug 'nope'"):
        call_command("simulate_call", "--bot", "nope", "--audio", audio("caller_hours.wav"))


class BrokenWhisper:
    """The real Whisper whose every transcription raises (a corrupt model, an out-of-memory),
    on the short-window pass (CTranslate2's generate) as on faster-whisper's own."""

    class _BrokenCTranslate2:
        is_multilingual = False

        def generate(self, *args, **kwargs):
            raise RuntimeError("CTranslate2: out of memory")

    def __init__(self, real):
        self._real = real  # tokenizer and feature extractor still work
        self.model = self._BrokenCTranslate2()

    def __getattr__(self, name):
        return getattr(self._real, name)

    def transcribe(self, *args, **kwargs):
        raise RuntimeError("CTranslate2: out of memory")


def hours_question_call(bot) -> Call:
    """One simulated call asking the opening hours, as stored after hang-up."""
    import asyncio

    from pipelines.config import BotConfig
    from pipelines.live.simulate import simulate_call

    call = asyncio.run(simulate_call(BotConfig.from_bot(bot), [audio("caller_hours.wav")]))
    return Call.objects.get(pk=call.saved_call.pk)


@pytest.mark.django_db(transaction=True)
def test_stt_failure_ends_the_call_politely_and_keeps_the_record(llm_server, loaded_models, desk_bot, queued, monkeypatch):
    from pipelines.live.factory import TECHNICAL_TROUBLE

    broken = BrokenWhisper(loaded_models.whisper(""))
    monkeypatch.setattr(loaded_models, "whisper", lambda name="": broken)
    stored = hours_question_call(desk_bot)
    assert (stored.end_reason, stored.status) == ("error", "failed")
    assert list(stored.turns.values_list("role", "text")) == [
        ("bot", "Hello, Alpha Dental, how can I help?"), ("bot", TECHNICAL_TROUBLE)]
    assert "stt failed: CTranslate2: out of memory" in stored.metrics["notes"][0]


class VoiceThatBreaksAfterTheGreeting:
    """The real Piper voice for the greeting, then onnxruntime failing on every synthesis."""

    def __init__(self, real):
        self._real = real
        self.config = real.config
        self.syntheses = 0

    def synthesize(self, text):
        """Like Piper's, a generator: the failure surfaces on the TTS thread, at the first chunk."""
        self.syntheses += 1
        if self.syntheses > 1:
            raise RuntimeError("onnxruntime: bad allocation")
        yield from self._real.synthesize(text)


@pytest.mark.django_db(transaction=True)
def test_tts_failure_ends_the_call_and_keeps_the_record(llm_server, loaded_models, desk_bot, queued, monkeypatch):
    voice = VoiceThatBreaksAfterTheGreeting(loaded_models.piper(""))
    monkeypatch.setattr(loaded_models, "piper", lambda name="": voice)
    stored = hours_question_call(desk_bot)
    assert (stored.end_reason, stored.status) == ("error", "failed")
    turns = list(stored.turns.values_list("role", "text"))
    assert turns[0] == ("bot", "Hello, Alpha Dental, how can I help?")
    assert turns[1][0] == "caller" and "opening hours" in turns[1][1].lower(), turns
    assert any("tts failed: onnxruntime: bad allocation" in note for note in stored.metrics["notes"])
    assert queued == [("postcall.tasks.process_call", [stored.pk])]  # post-call still runs
