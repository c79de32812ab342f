"""CallRecorder: transcript, per-turn timings and both sides' audio, in memory.

A Pipecat observer (it sees every frame hop without sitting in the pipeline).
At hang-up ``to_record()`` turns it into a ``CallRecord`` for ``save_call_record``.

Timings per bot reply (ms): ``v2v_ms`` end of caller speech -> first bot audio
written by the output transport; ``stt_ms`` end of speech -> transcript;
``llm_ttfb_ms`` context into the LLM -> its first token; ``tts_ttfb_ms`` first
text into TTS -> its first audio. The end of caller speech is the VAD stop
minus its ``stop_secs``, unless the transport knows it exactly
(``mark_caller_speech_end``, used by the file-driven transport).
"""

from __future__ import annotations

import io
import time
import wave
from dataclasses import dataclass

import numpy as np
from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    InputAudioRawFrame,
    InputDTMFFrame,
    InterruptionFrame,
    LLMContextFrame,
    LLMTextFrame,
    OutputAudioRawFrame,
    TranscriptionFrame,
    TTSAudioRawFrame,
    TTSSpeakFrame,
    TTSTextFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.observers.base_observer import BaseObserver, FramePushed
from pipecat.processors.frame_processor import FrameDirection

from pipelines.call_store import CallRecord, TurnRecord

RECORDING_RATE = 8000


def _resample(pcm: bytes, rate: int) -> np.ndarray:
    samples = np.frombuffer(pcm, dtype=np.int16)
    if rate == RECORDING_RATE or not len(samples):
        return samples
    n = int(len(samples) * RECORDING_RATE / rate)
    return np.interp(np.linspace(0, len(samples) - 1, n), np.arange(len(samples)), samples).astype(np.int16)


class _Track:
    """One side's audio on the call's timeline (8 kHz mono int16)."""

    def __init__(self):
        self.buf = bytearray()

    def write(self, at_sec: float, pcm: bytes, rate: int, append: bool = False):
        data = _resample(pcm, rate).tobytes()
        pos = len(self.buf) if append else max(0, int(at_sec * RECORDING_RATE)) * 2
        if pos > len(self.buf):
            self.buf.extend(bytes(pos - len(self.buf)))
        self.buf[pos:pos + len(data)] = data


@dataclass
class BotReplyTiming:
    speech_end: float | None = None
    transcript_at: float | None = None
    llm_request_at: float | None = None
    llm_first_token_at: float | None = None
    tts_text_at: float | None = None
    tts_first_audio_at: float | None = None
    first_audio_out_at: float | None = None

    def metrics(self) -> dict:
        def ms(a, b):
            return round((b - a) * 1000) if a is not None and b is not None else None

        return {
            "v2v_ms": ms(self.speech_end, self.first_audio_out_at),
            "stt_ms": ms(self.speech_end, self.transcript_at),
            "llm_ttfb_ms": ms(self.llm_request_at, self.llm_first_token_at),
            "tts_ttfb_ms": ms(self.tts_text_at, self.tts_first_audio_at),
        }


@dataclass
class _Turn:
    role: str
    text: str = ""
    start: float | None = None
    end: float | None = None
    interrupted: bool = False
    timing: BotReplyTiming | None = None
    planned: str = ""  # what the TTS was given (text spoken so far is ``text``)
    intended: str = ""  # a scripted line (greeting, re-prompt) the TTS was asked to say
    audio_secs: float = 0.0
    dtmf: str = ""  # keys the caller pressed (this turn is then "[DTMF 12#]", kept apart from speech)


class CallRecorder(BaseObserver):
    def __init__(self, *, input, stt, llm, tts, output, record_audio: bool = True, **kwargs):
        super().__init__(**kwargs)
        self._input, self._stt, self._llm, self._tts, self._output = input, stt, llm, tts, output
        self.t0 = time.monotonic()
        self.started_at = None
        self.turns: list[_Turn] = []
        self._pending = BotReplyTiming()  # timings of the reply being prepared
        self._bot_speaking = False
        self._record_audio = record_audio
        self._caller = _Track()
        self._bot = _Track()
        self._exact_speech_end = False
        self._intended: list[str] = []  # scripted lines sent to the TTS, not yet heard
        self.events: list[tuple[float, str]] = []  # (time, name) for tests and debugging

    def now(self) -> float:
        return time.monotonic() - self.t0

    # --- inputs from transports -------------------------------------------------
    def mark_caller_speech_end(self, at: float | None = None):
        """The transport knows exactly when the caller stopped speaking (monotonic time)."""
        self._exact_speech_end = True
        self._pending = BotReplyTiming(speech_end=(at if at is not None else time.monotonic()) - self.t0)

    # --- observer ---------------------------------------------------------------
    async def on_push_frame(self, data: FramePushed):
        frame, src = data.frame, data.source
        t = self.now()
        if isinstance(frame, InputAudioRawFrame) and data.direction == FrameDirection.DOWNSTREAM:
            if self._record_audio and src is self._input:
                self._caller.write(t, frame.audio, frame.sample_rate, append=True)
            return
        if isinstance(frame, OutputAudioRawFrame) and src is self._output:
            if data.direction == FrameDirection.DOWNSTREAM:
                if self._record_audio:
                    self._bot.write(t, frame.audio, frame.sample_rate)
                if self.turns and self.turns[-1].role == "bot":
                    self.turns[-1].audio_secs += len(frame.audio) / 2 / frame.sample_rate
            return
        if isinstance(frame, VADUserStartedSpeakingFrame) and src is self._input:
            self.events.append((t, "vad_start"))
        elif isinstance(frame, VADUserStoppedSpeakingFrame) and self._is_first(data, frame):
            self.events.append((t, "vad_stop"))
            if not self._exact_speech_end:
                self._pending = BotReplyTiming(speech_end=t - (frame.stop_secs or 0))
            self._exact_speech_end = False
        elif isinstance(frame, InputDTMFFrame) and src is self._input:
            self._dtmf(str(frame.button.value), t)
        elif isinstance(frame, TranscriptionFrame) and src is self._stt:
            turn = self._open("caller", t)
            turn.text = f"{turn.text} {frame.text}".strip()
            turn.end = t
            self._pending.transcript_at = t
            self.events.append((t, "transcript"))
        elif isinstance(frame, LLMContextFrame) and data.destination is self._llm:
            self._pending.llm_request_at = t
            self._intended.clear()  # a scripted line not begun by now was cut before any audio
        elif isinstance(frame, LLMTextFrame) and src is self._llm:
            if self._pending.llm_first_token_at is None:
                self._pending.llm_first_token_at = t
        elif isinstance(frame, TTSTextFrame) and src is self._output:
            turn = self._bot_turn(t)
            turn.text = f"{turn.text} {frame.text}".strip()
        elif isinstance(frame, TTSTextFrame) and src is self._tts:
            turn = self._bot_turn(t)
            turn.planned = f"{turn.planned} {frame.text}".strip()
        elif isinstance(frame, TTSSpeakFrame) and data.destination is self._tts:
            self._intended.append(frame.text)
        elif isinstance(frame, TTSAudioRawFrame) and src is self._tts:
            if self._pending.tts_first_audio_at is None:
                self._pending.tts_first_audio_at = t
        elif isinstance(frame, BotStartedSpeakingFrame) and src is self._output and self._is_first(data, frame):
            self._bot_speaking = True
            self.events.append((t, "bot_started"))
            turn = self._bot_turn(t)
            if turn.timing is None:
                turn.start = t
                if self._intended:
                    turn.intended = self._intended.pop(0)
                self._pending.first_audio_out_at = t
                turn.timing = self._pending
                self._pending = BotReplyTiming()
        elif isinstance(frame, BotStoppedSpeakingFrame) and src is self._output and self._is_first(data, frame):
            self._bot_speaking = False
            self.events.append((t, "bot_stopped"))
            if self.turns and self.turns[-1].role == "bot":
                self.turns[-1].end = t
        elif isinstance(frame, InterruptionFrame) and self._is_first(data, frame):
            self.events.append((t, "interruption"))
            last = self.turns[-1] if self.turns else None
            # Still audible to the caller? (Websocket transports send faster than real time.)
            if last is not None and last.role == "bot" and last.start is not None \
                    and (self._bot_speaking or t < last.start + last.audio_secs):
                last.interrupted = True
                last.end = t

        # The TTS first-text mark: the first text the TTS receives for this reply.
        if isinstance(frame, (LLMTextFrame,)) and data.destination is self._tts and self._pending.tts_text_at is None:
            self._pending.tts_text_at = t

    def _is_first(self, data: FramePushed, frame) -> bool:
        """Broadcast frames hop through every processor: count each frame once."""
        seen = self.__dict__.setdefault("_seen", set())
        if frame.id in seen:
            return False
        seen.add(frame.id)
        if len(seen) > 4096:
            seen.clear()
        return True

    def _bot_turn(self, t: float) -> _Turn:
        """The bot turn in progress, or a new one after a caller turn or a finished bot turn."""
        last = self.turns[-1] if self.turns else None
        if last is None or last.role != "bot" or last.end is not None:
            self.turns.append(_Turn(role="bot", start=t))
        return self.turns[-1]

    def _dtmf(self, digit: str, t: float) -> None:
        """A key the caller pressed: one transcript turn per run of keys, e.g. ``[DTMF 12#]``."""
        self.events.append((t, f"dtmf {digit}"))
        last = self.turns[-1] if self.turns else None
        if last is None or not last.dtmf:
            last = _Turn(role="caller", start=t)
            self.turns.append(last)
        last.dtmf += digit
        last.text, last.end = f"[DTMF {last.dtmf}]", t

    def dtmf_digits(self) -> str:
        return "".join(turn.dtmf for turn in self.turns)

    def _open(self, role: str, t: float) -> _Turn:
        if not self.turns or self.turns[-1].role != role or self.turns[-1].dtmf:
            self.turns.append(_Turn(role=role, start=t))
        return self.turns[-1]

    # --- results ----------------------------------------------------------------
    def reply_metrics(self) -> list[dict]:
        return [t.timing.metrics() for t in self.turns if t.role == "bot" and t.timing and t.timing.speech_end is not None]

    def summary_metrics(self) -> dict:
        replies = self.reply_metrics()
        out = {"replies": replies, "stt_full_window_passes": getattr(self._stt, "full_window_passes", 0)}
        if digits := self.dtmf_digits():
            out["dtmf"] = digits
        v2v = [r["v2v_ms"] for r in replies if r["v2v_ms"] is not None]
        if v2v:
            out["v2v_ms_median"] = float(np.median(v2v))
            out["v2v_ms_max"] = max(v2v)
        return out

    def wav_bytes(self) -> bytes | None:
        if not self._record_audio:
            return None
        a = np.frombuffer(bytes(self._caller.buf), dtype=np.int16)
        b = np.frombuffer(bytes(self._bot.buf), dtype=np.int16)
        n = max(len(a), len(b))
        if n == 0:
            return None
        stereo = np.zeros((n, 2), dtype=np.int16)
        stereo[: len(a), 0] = a
        stereo[: len(b), 1] = b
        out = io.BytesIO()
        with wave.open(out, "wb") as w:
            w.setnchannels(2)
            w.setsampwidth(2)
            w.setframerate(RECORDING_RATE)
            w.writeframes(stereo.tobytes())
        return out.getvalue()

    def bot_wav_bytes(self) -> bytes:
        out = io.BytesIO()
        with wave.open(out, "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(RECORDING_RATE)
            w.writeframes(bytes(self._bot.buf))
        return out.getvalue()

    def turn_records(self) -> list[TurnRecord]:
        records = []
        for turn in self.turns:
            # A line cut off before its words were timed still shows what the bot began to say.
            text = turn.text or turn.planned or turn.intended
            if not text:
                continue
            latency = turn.timing.metrics()["v2v_ms"] if turn.timing else None
            records.append(TurnRecord(
                role=turn.role, text=text,
                start_ms=round(turn.start * 1000) if turn.start is not None else None,
                end_ms=round(turn.end * 1000) if turn.end is not None else None,
                latency_ms=latency if latency is None or latency >= 0 else None,
                interrupted=turn.interrupted,
            ))
        return records

    def to_record(self, *, config, transport: str, started_at, ended_at, end_reason: str, **extra) -> CallRecord:
        return CallRecord(
            company_id=config.company_id, bot_id=config.bot_id, transport=transport,
            started_at=started_at, ended_at=ended_at, end_reason=end_reason,
            turns=self.turn_records(), metrics=self.summary_metrics(),
            recording_wav=self.wav_bytes(), **extra,
        )
