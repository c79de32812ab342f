"""The voice runner: every case is one ``simulate_call`` through the live pipeline.

The caller's turns are spoken by the model registry's Piper voice into 16 kHz WAVs
(a temp folder, removed at the end; digit groups are said one digit at a time and
slower, as callers read out numbers); a silence turn is a short silent WAV, after
which the caller waits and the bot's idle timer speaks. Whisper hears the caller,
the scenario engine, knowledge, LLM and Piper answer, in real time. Calls are not
stored. The live pipeline reads the real clock, so relative dates are read against
today in the company's time zone (not the suite's ``today``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import re
import shutil
import tempfile
import time
import wave
from pathlib import Path

import numpy as np

from pipelines.config import BotConfig
from pipelines.dialogue.normalize import today_in
from pipelines.evaluation.runs import CaseRun, TurnRun, booking_outcome
from pipelines.evaluation.scoring import end_reason_of, fold

RATE = 16000
PHONE_RE = re.compile(r"\+?\d[\d\s\-().]{5,}\d")


def speakable(text: str) -> str:
    """Digit groups as a caller says them: "202 555 0111" -> "2 0 2, 5 5 5, 0 1 1 1"."""
    def spell(match: re.Match) -> str:
        groups = [g for g in re.split(r"[\s\-().]+", match.group().lstrip("+")) if g]
        return ", ".join(" ".join(g) for g in groups)

    return PHONE_RE.sub(spell, text)


def synthesize_wav(voice, text: str, path: Path) -> None:
    from piper import SynthesisConfig

    spoken = speakable(text)
    config = SynthesisConfig(length_scale=1.35 if spoken != text else None)
    chunks = list(voice.synthesize(spoken, syn_config=config))
    pcm = np.concatenate([np.frombuffer(c.audio_int16_bytes, dtype=np.int16) for c in chunks]) if chunks \
        else np.zeros(0, np.int16)
    rate = voice.config.sample_rate
    if rate != RATE and len(pcm):
        n = int(len(pcm) * RATE / rate)
        pcm = np.interp(np.linspace(0, len(pcm) - 1, n), np.arange(len(pcm)), pcm).astype(np.int16)
    pcm = np.concatenate([np.zeros(int(0.3 * RATE), np.int16), pcm, np.zeros(RATE, np.int16)])
    write_wav(path, pcm)


def write_wav(path: Path, pcm: np.ndarray) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(pcm.astype(np.int16).tobytes())


def _overlap(heard: str, scripted: str) -> float:
    """How much of what was heard is words of the scripted turn (folded: digits, case)."""
    a, b = set(fold(heard).split()), set(fold(scripted).split())
    return len(a & b) / len(a) if a else 0.0


class VoiceRunner:
    mode = "voice"

    def __init__(self, config: BotConfig, llm_base_url: str):
        from pipelines.model_registry import registry

        self.config = config
        self.llm_base_url = llm_base_url
        self.today = today_in(config.company_timezone)
        self.folder = Path(tempfile.mkdtemp(prefix="vb-eval-voice-"))
        self.wavs: dict[str, Path] = {}
        registry.preload(stt_models=(config.stt_model,), voices=(config.voice,))
        self.caller_voice = registry.piper("")
        self.silence = self.folder / "silence.wav"
        write_wav(self.silence, np.zeros(int(0.3 * RATE), np.int16))
        self.synthesis_secs = 0.0

    def wav_for(self, text: str | None) -> Path:
        if text is None:
            return self.silence
        if text not in self.wavs:
            started = time.monotonic()
            path = self.folder / f"{hashlib.sha1(text.encode()).hexdigest()[:16]}.wav"
            synthesize_wav(self.caller_voice, text, path)
            self.wavs[text] = path
            self.synthesis_secs += time.monotonic() - started
        return self.wavs[text]

    def prepare(self, texts: list[str]) -> None:
        for text in texts:
            self.wav_for(text)

    def run(self, turns: list[str | None], *, scenario: str = "", overrides: dict | None = None) -> CaseRun:
        from pipelines.live.simulate import call_report, simulate_call

        config = dataclasses.replace(self.config, **overrides) if overrides else self.config
        started = time.monotonic()
        run = CaseRun()
        try:
            files = [self.wav_for(t) for t in turns]
            call = asyncio.run(simulate_call(config, files, store=False, llm_base_url=self.llm_base_url,
                                             record_audio=False))
            report = call_report(call)
            self._turns(run, report["turns"], turns)
            run.end_reason = end_reason_of(report.get("end_reason"))
            engine = call.scenario.engine if call.scenario is not None else None
            if engine is not None:
                run.completed = list(engine.completed)
                if scenario:
                    _done, run.fields = booking_outcome(engine, scenario)
        except Exception as exc:  # noqa: BLE001 - one broken case is a result, not the end of the benchmark
            run.error = f"{type(exc).__name__}: {exc}"
        run.wall_ms = int((time.monotonic() - started) * 1000)
        return run

    @staticmethod
    def _turns(run: CaseRun, report_turns: list[dict], scripted: list[str | None]) -> None:
        """The call's turns as (scripted words, what Whisper heard, what the bot said, v2v).

        Whisper's turns need not be the script's: a pause after "sure," can end a turn, so one
        scripted turn may be heard as two. Each heard turn is put with the scripted turn its
        words are closest to, in order (the next one when it is at least as close).
        """
        spoken = [t for t in scripted if t is not None]
        k = last = -1
        current: TurnRun | None = None
        for item in report_turns:
            text = (item.get("text") or "").strip()
            if item["role"] == "bot":
                if not run.greeting and current is None and not run.turns:
                    run.greeting = text
                    continue
                if current is None:  # the bot spoke without a caller turn: after a silence
                    current = TurnRun(None, kind="silence")
                    run.turns.append(current)
                current.bot = f"{current.bot} {text}".strip()
                if current.latency_ms is None and item.get("v2v_ms") is not None:
                    current.latency_ms = int(item["v2v_ms"])
                if current.caller is None:
                    current = None
                continue
            if k + 1 < len(spoken) and (k < 0 or _overlap(text, spoken[k + 1]) >= _overlap(text, spoken[k])):
                k += 1
            caller = spoken[k] if 0 <= k < len(spoken) else None
            if caller is not None and k == last:
                caller = f"(continued) {caller}"
            last = k
            current = TurnRun(caller, heard=text)
            run.turns.append(current)

    def close(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
