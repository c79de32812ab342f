"""Answering machines found in the call's own audio: the beep detector, then the processor in a real pipeline.

The greetings are Piper speech; the transcripts are the real Whisper's, one per utterance
(the caller's audio cut at pauses, as the VAD cuts it), delivered by a stand-in for the STT
when it has heard the audio up to the utterance's end plus Whisper's latency. The
stand-in sits after the detector, as STT does in a call: audio the detector drops is never
transcribed.
"""

import asyncio
import audioop
import wave

import numpy as np
import pytest
from pipecat.frames.frames import InputAudioRawFrame, TranscriptionFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.tests.utils import SleepFrame, run_test

from pipelines.live.beep import BeepDetector
from pipelines.live.voicemail import SpeechEnergy, VoicemailDetector, voicemail_phrase
from tests.calls.conftest import DATA, loaded_models  # noqa: F401 - a fixture

RATE = 16000
FRAME = 320  # 20 ms, as the transports deliver
DANA = "Hi, you've reached Dana. I can't take your call right now. Please leave a message after the tone."
STT_LATENCY_SECS = 0.5  # VAD stop (0.2 s) and a tiny.en pass after the utterance's end
SPEECH_WAVS = sorted(DATA.glob("*.wav"))


def tone(freq: float, secs: float, dbfs: float, rate: int = RATE) -> np.ndarray:
    t = np.arange(int(secs * rate)) / rate
    return (10 ** (dbfs / 20) * 32767 * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def silence(secs: float, rate: int = RATE) -> np.ndarray:
    return np.zeros(int(secs * rate), np.int16)


def phone_line(pcm: np.ndarray) -> np.ndarray:
    """16 kHz audio after a G.711 mu-law leg (8 kHz) and back, as a SIP trunk delivers it."""
    narrow, _ = audioop.ratecv(pcm.tobytes(), 2, 1, RATE, 8000, None)
    narrow = audioop.ulaw2lin(audioop.lin2ulaw(narrow, 2), 2)
    wide, _ = audioop.ratecv(narrow, 2, 1, 8000, RATE, None)
    return np.frombuffer(wide, np.int16)


def phone_line_8k(pcm: np.ndarray) -> np.ndarray:
    """8 kHz audio after G.711 mu-law."""
    return np.frombuffer(audioop.ulaw2lin(audioop.lin2ulaw(pcm.tobytes(), 2), 2), np.int16)


def beeps_in(pcm: np.ndarray, rate: int = RATE) -> list[tuple[float, float]]:
    """(beep end, audio fed when it was reported) for each beep, fed 20 ms at a time."""
    detector = BeepDetector(rate)
    step, found = rate // 50, []
    for i in range(0, len(pcm), step):
        if (end := detector.feed(pcm[i:i + step].tobytes())) is not None:
            found.append((end, detector.seconds))
    return found


def read_wav(path) -> np.ndarray:
    with wave.open(str(path)) as w:
        assert (w.getframerate(), w.getnchannels()) == (RATE, 1)
        return np.frombuffer(w.readframes(w.getnframes()), np.int16)


# --- The beep detector ----------------------------------------------------------------

@pytest.mark.parametrize("freq", [400, 850, 1000, 1400, 2500])
@pytest.mark.parametrize("dbfs", [-6, -30])
@pytest.mark.parametrize("line", ["clean", "mu-law"])
def test_a_tone_is_a_beep_ending_where_it_ends(freq, dbfs, line):
    for secs in (0.15, 0.5, 1.2):
        pcm = np.concatenate([silence(0.3137), tone(freq, secs, dbfs), silence(0.5)])
        pcm = phone_line(pcm) if line == "mu-law" else pcm
        found = beeps_in(pcm)
        assert len(found) == 1, (secs, found)
        (end, reported), true_end = found[0], 0.3137 + secs
        assert abs(end - true_end) < 0.01, (secs, end)
        assert reported - true_end < 0.06, "reported within a window after the beep ended"


def test_a_beep_at_8_khz():
    pcm = np.concatenate([silence(0.3, 8000), tone(1000, 0.4, -20, 8000), silence(0.4, 8000)])
    [(end, _)] = beeps_in(phone_line_8k(pcm), rate=8000)
    assert abs(end - 0.7) < 0.01


@pytest.mark.parametrize("what,pcm", [
    ("a 100 ms blip", np.concatenate([tone(1000, 0.1, -10), silence(0.5)])),
    ("a dial tone (350+440 Hz)", (tone(350, 3, -20) + tone(440, 3, -20)).astype(np.int16)),
    ("a chord (600+900 Hz)", np.concatenate([tone(600, 0.5, -20) + tone(900, 0.5, -22), silence(0.5)])),
    ("a ringback (440+480 Hz)", np.concatenate([tone(440, 2, -20) + tone(480, 2, -20), silence(1)])),
    ("a 6 s line tone", np.concatenate([tone(1000, 6, -20), silence(0.5)])),
    ("white noise", np.random.default_rng(0).normal(0, 3000, 3 * RATE).astype(np.int16)),
    ("a tone under the -45 dBFS floor", np.concatenate([tone(1000, 0.5, -50), silence(0.5)])),
])
def test_what_is_not_a_beep(what, pcm):
    assert beeps_in(pcm) == [], what


def test_speech_is_never_a_beep():
    """Every caller WAV (Piper), as recorded, over mu-law, and pitched up 1.5x and 2x (higher voices, sparser harmonics)."""
    for path in SPEECH_WAVS:
        pcm = read_wav(path)
        for shift in (1.0, 1.5, 2.0):
            n = int(len(pcm) / shift)
            shifted = np.interp(np.linspace(0, len(pcm) - 1, n), np.arange(len(pcm)), pcm).astype(np.int16)
            for version in (shifted, phone_line(shifted)):
                assert beeps_in(version) == [], (path.name, shift)


# --- Real speech and the processor (Piper, Whisper) ------------------------------------

@pytest.fixture(scope="module")
def say(loaded_models):  # noqa: F811
    voice = loaded_models.piper("")

    def synthesize(text: str) -> np.ndarray:
        pcm = np.concatenate([np.frombuffer(c.audio_int16_bytes, np.int16) for c in voice.synthesize(text)])
        n = int(len(pcm) * RATE / voice.config.sample_rate)
        return np.interp(np.linspace(0, len(pcm) - 1, n), np.arange(len(pcm)), pcm).astype(np.int16)
    return synthesize


@pytest.fixture(scope="module")
def dana(say):
    return say(DANA)


def speech_frames(pcm: np.ndarray) -> list[float]:
    """Where each 20 ms frame with speech in it starts (seconds)."""
    energy = SpeechEnergy()
    return [i / RATE for i in range(0, len(pcm), FRAME) if energy.active(pcm[i:i + FRAME])]


def long_greeting_at(pcm: np.ndarray, secs: float = 4.0) -> float:
    """Where a greeting's length decides: the end of its first speech frame ``secs`` after its first words
    (a pause there holds the decision to the next word)."""
    frames = speech_frames(pcm)
    return next(t for t in frames if t + FRAME / RATE >= frames[0] + secs - 1e-6) + FRAME / RATE


def utterances(pcm: np.ndarray, pause_secs: float = 0.2) -> list[tuple[float, float]]:
    """(start, end) of each stretch of speech, cut at pauses as the VAD (stop 0.2 s) cuts them."""
    spans = []
    for t0 in speech_frames(pcm):
        t1 = t0 + FRAME / RATE
        if spans and t0 - spans[-1][1] < pause_secs:
            spans[-1] = (spans[-1][0], t1)
        else:
            spans.append((t0, t1))
    return spans


def transcripts(models, pcm: np.ndarray) -> list[tuple[float, str]]:
    """Whisper's text of each utterance and when the STT would deliver it (audio-clock seconds)."""
    whisper, out = models.whisper(""), []
    for start, end in utterances(pcm):
        audio = pcm[int(start * RATE):int(end * RATE)].astype(np.float32) / 32768
        segments, _ = whisper.transcribe(np.concatenate([audio, np.zeros(RATE // 2, np.float32)]), language="en",
                                         beam_size=1)
        out.append((end + STT_LATENCY_SECS, "".join(s.text for s in segments).strip()))
    return out


class ScriptedSTT(FrameProcessor):
    """The STT's place in the pipeline: passes the audio on and, once it has heard the audio up to each
    delivery time, pushes that utterance's transcript (or runs a provider's verdict arriving then)."""

    def __init__(self, detector, script, **kwargs):
        super().__init__(**kwargs)
        self.detector = detector
        self.script = list(script)
        self.heard = 0.0

    async def process_frame(self, frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        await self.push_frame(frame, direction)
        if isinstance(frame, InputAudioRawFrame):
            self.heard += frame.num_frames / frame.sample_rate
            while self.script and self.script[0][0] <= self.heard:
                _, what = self.script.pop(0)
                if callable(what):
                    await what(self.detector)
                else:
                    await self.push_frame(TranscriptionFrame(what, "callee", "", finalized=True))


def run_call(pcm: np.ndarray, script=(), rate: int = RATE, then_wait_secs: float = 0.0, **options):
    """The detector, the STT stand-in and the transcript tap in a real pipeline, fed 20 ms audio frames."""
    detector = VoicemailDetector(**options)
    events = []

    @detector.event_handler("on_machine")
    async def _machine(d, reason):
        events.append(("machine", reason))

    @detector.event_handler("on_human")
    async def _human(d, reason):
        events.append(("human", reason))

    @detector.event_handler("on_leave_message")
    async def _message(d):
        events.append(("leave message", d.result["message_at_s"]))

    step = rate // 50
    frames = []
    for i in range(0, len(pcm), step):
        # A pause after each frame lets it, and any transcript it releases, through before the next.
        frames += [InputAudioRawFrame(audio=pcm[i:i + step].tobytes(), sample_rate=rate, num_channels=1),
                   SleepFrame(sleep=0.001)]
    if then_wait_secs:  # the audio stops; the pipeline runs on
        frames.append(SleepFrame(sleep=then_wait_secs))
    pipeline = Pipeline([detector, ScriptedSTT(detector, script), detector.transcript_tap()])
    down, _ = asyncio.run(run_test(pipeline, frames_to_send=frames, expected_down_frames=None, start_timeout=10))
    return detector, events, down


def audio_out(down) -> bytes:
    return b"".join(f.audio for f in down if isinstance(f, InputAudioRawFrame))


@pytest.mark.models
def test_voicemail_greeting_gets_the_message_after_the_beep(loaded_models, dana):  # noqa: F811
    """Done-when: Dana's greeting, 0.3 s, a 1 kHz 0.5 s beep, silence, over a mu-law line."""
    beep_end = len(dana) / RATE + 0.3 + 0.5
    pcm = phone_line(np.concatenate([dana, silence(0.3), tone(1000, 0.5, -12), silence(3.0)]))
    script = transcripts(loaded_models, dana)
    assert any(voicemail_phrase(text) for _, text in script), script  # Whisper did hear the phrases
    detector, events, down = run_call(pcm, script)

    result = detector.result
    # Whisper's "you've reached" usually comes in before the greeting has run 4 s; if not, the length decides.
    long_at = long_greeting_at(dana)
    heard = any("you've reached" in text.lower() for at, text in script if at < long_at)
    reason = "phrase: you've reached" if heard else "long greeting"
    assert result["outcome"] == "machine" and result["reason"] == reason, (result, script)
    assert result["decided_at_s"] <= long_at + 1e-6
    assert events.count(("machine", reason)) == 1
    assert [e for e in events if e[0] == "leave message"] == [("leave message", result["message_at_s"])]
    assert abs(result["beep_at_s"] - beep_end) < 0.05, result
    assert beep_end < result["message_at_s"] < beep_end + 0.1, result
    assert result["message_after"] == "beep"
    # Only the audio before the decision went on to STT; no transcript reached the brain from then on.
    assert abs(len(audio_out(down)) / 2 / RATE - result["decided_at_s"]) <= 0.021
    said = [f.text for f in down if isinstance(f, TranscriptionFrame)]
    assert said == [text for at, text in script if at < result["decided_at_s"] - 1e-6]


@pytest.mark.models
def test_a_phrase_decides_a_short_greeting(loaded_models, say):  # noqa: F811
    """Too short for its length to tell: Whisper's "leave a message" does, before the beep is over."""
    greeting = say("Please leave a message after the tone.")
    beep_end = len(greeting) / RATE + 0.3 + 0.8
    pcm = np.concatenate([greeting, silence(0.3), tone(1400, 0.8, -20), silence(1.0)])
    script = transcripts(loaded_models, greeting)
    assert "leave a message" in " ".join(text.lower() for _, text in script), script
    detector, events, _ = run_call(pcm, script)

    result = detector.result
    assert result["reason"] == "phrase: leave a message", (result, script)
    assert result["decided_at_s"] < beep_end - 0.1
    assert beep_end < result["message_at_s"] < beep_end + 0.1
    assert [e[0] for e in events] == ["machine", "leave message"]


@pytest.mark.models
def test_a_long_greeting_without_a_beep_gets_the_message_after_its_silence(dana):
    """No transcripts: the greeting's length decides, 2 s of silence after it releases the message."""
    pcm = np.concatenate([dana, silence(3.0)])
    detector, events, _ = run_call(pcm)
    result = detector.result
    assert (result["outcome"], result["reason"]) == ("machine", "long greeting"), result
    assert abs(result["decided_at_s"] - long_greeting_at(dana)) < 1e-6, result
    assert (result["message_after"], result["beep_at_s"]) == ("silence", None)
    greeting_end = utterances(dana)[-1][1]
    assert greeting_end + 2.0 - 1e-6 <= result["message_at_s"] < greeting_end + 2.1, result
    assert [e[0] for e in events] == ["machine", "leave message"]


@pytest.mark.models
def test_a_person_saying_hello_is_a_human_and_hears_everything(loaded_models, say):  # noqa: F811
    hello = say("Hello?")
    pcm = np.concatenate([silence(0.5), hello, silence(3.0)])
    script = transcripts(loaded_models, pcm)
    detector, events, down = run_call(pcm, script)

    result = detector.result
    assert (result["outcome"], result["reason"]) == ("human", "short greeting"), result
    spoken_end = utterances(pcm)[-1][1]
    assert spoken_end + 0.8 - 1e-6 <= result["decided_at_s"] < spoken_end + 0.85
    assert events == [("human", "short greeting")]
    assert audio_out(down) == pcm.tobytes(), "every audio frame passed, unchanged"
    assert [f.text for f in down if isinstance(f, TranscriptionFrame)] == [text for _, text in script]


def test_a_beep_alone_at_8_khz_is_a_machine():
    pcm = np.concatenate([silence(1.0, 8000), tone(1000, 0.3, -20, 8000), silence(1.0, 8000)])
    detector, events, down = run_call(phone_line_8k(pcm), rate=8000)
    result = detector.result
    assert (result["outcome"], result["reason"], result["message_after"]) == ("machine", "beep", "beep")
    assert 1.3 < result["message_at_s"] < 1.36
    assert [e[0] for e in events] == ["machine", "leave message"]
    assert len(audio_out(down)) / 2 / 8000 <= 1.36


@pytest.mark.parametrize("message_ready", [False, True])
def test_the_providers_verdict(message_ready):
    """The provider's AMD says machine 0.4 s after the callee's first words (before a human pause would tell),
    with or without having heard the greeting end (a beep of its own)."""
    pcm = np.concatenate([read_wav(DATA / "caller_bye.wav"), silence(2.0)])
    spoken_end = utterances(pcm)[-1][1]

    async def provider(detector):
        await detector.provider_says_machine(message_ready=message_ready)
    detector, events, _ = run_call(pcm, [(spoken_end + 0.4, provider)])
    result = detector.result
    assert (result["outcome"], result["reason"]) == ("machine", "provider"), result
    assert abs(result["decided_at_s"] - (spoken_end + 0.4)) <= 0.021
    if message_ready:  # at once
        assert (result["message_after"], result["message_at_s"]) == ("provider", result["decided_at_s"])
    else:  # after 2 s of silence from the greeting's end
        assert result["message_after"] == "silence"
        assert spoken_end + 2.0 - 1e-6 <= result["message_at_s"] < spoken_end + 2.03, result
    assert [e[0] for e in events] == ["machine", "leave message"]


def test_the_providers_machine_overrides_a_human_read_from_timing():
    """A greeting that paused after its first words read as human; the provider's AMD knows better."""
    words = np.concatenate([read_wav(DATA / "caller_bye.wav"), silence(2.0)])
    spoken_end = utterances(words)[-1][1]
    pcm = np.concatenate([words[:int((spoken_end + 1.5) * RATE)], tone(1000, 0.4, -20), silence(1.0)])
    beep_end = spoken_end + 1.9

    async def provider(detector):
        assert detector.outcome == "human"
        await detector.provider_says_machine()
    detector, events, down = run_call(pcm, [(spoken_end + 1.2, provider)])
    result = detector.result
    assert (result["outcome"], result["reason"], result["message_after"]) == ("machine", "provider", "beep"), result
    assert abs(result["beep_at_s"] - beep_end) < 0.01 and beep_end < result["message_at_s"] < beep_end + 0.06
    assert [e[0] for e in events] == ["human", "machine", "leave message"]
    assert abs(len(audio_out(down)) / 2 / RATE - (spoken_end + 1.2)) <= 0.021


def endless_talk(secs: float) -> np.ndarray:
    """Caller WAVs back to back, 0.3 s apart: speech that never pauses long enough to end a greeting."""
    parts = []
    for path in SPEECH_WAVS:
        pcm = read_wav(path)
        loud = np.flatnonzero(np.abs(pcm) > 300)
        parts += [pcm[loud[0]:loud[-1]], silence(0.3)]
    talk = np.concatenate(parts)
    return np.tile(talk, int(secs * RATE / len(talk)) + 1)[:int(secs * RATE)]


def test_a_machine_that_never_stops_gets_the_message_at_the_cap():
    detector, events, _ = run_call(endless_talk(9.0), max_wait_secs=3.0)
    result = detector.result
    assert (result["reason"], result["message_after"]) == ("long greeting", "timeout"), result
    assert abs(result["message_at_s"] - (result["decided_at_s"] + 3.0)) <= 0.021
    assert [e[0] for e in events] == ["machine", "leave message"]


def test_audio_that_stops_coming_releases_the_message_in_real_time():
    """A transport that sends nothing in silence: the wall clock stands in for the audio clock."""
    detector, events, _ = run_call(endless_talk(1.5), long_greeting_secs=1.0, silence_after_greeting_secs=0.5,
                                   then_wait_secs=1.0)
    result = detector.result
    assert (result["reason"], result["message_after"]) == ("long greeting", "no audio"), result
    assert [e[0] for e in events] == ["machine", "leave message"]


def test_undecided_after_the_analysis_window_it_stops_listening():
    pcm = np.concatenate([silence(1.5), tone(1000, 0.5, -20), silence(1.0)])
    detector, events, down = run_call(pcm, analysis_secs=1.0)
    assert detector.result["outcome"] == "unknown" and detector.result["beep_at_s"] is None and events == []
    assert audio_out(down) == pcm.tobytes()


@pytest.mark.parametrize("text,phrase", [
    ("Hi, you've reached Dana.", "you've reached"),
    ("Please, leave a message after the tone.", "leave a message"),
    ("I CAN\u2019T TAKE YOUR CALL right now!", "can't take your call"),
    ("The person you are calling is not available.", "not available"),
    ("...welcome to the voicemail of", "voicemail"),
    ("Hello?", None),
    ("Yes, this is Dana speaking.", None),
    ("I'd like to leave a review", None),
])
def test_voicemail_phrases_as_whisper_writes_them(text, phrase):
    assert voicemail_phrase(text) == phrase
