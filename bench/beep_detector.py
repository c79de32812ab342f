"""What answering-machine detection costs per 20 ms caller frame; prints JSON.

``direct_us``: the work itself, nothing downstream: ``BeepDetector.feed``, and the
detector's ``process_frame`` while ``analysing`` (unknown: energy and beep
detector) and once ``human`` (the pass-through every later frame of a person's
call pays), next to a ``plain`` processor that only passes frames on.
``in_pipeline_us``: the same ``process_frame`` timed inside a real pipeline (the
push into the next processor's queue included), per state, also ``machine``
(waiting for the beep, audio dropped) and ``machine, message left``. Medians and
95th percentiles in microseconds; no models needed (the caller WAVs are Piper speech).

    .venv/bin/python bench/beep_detector.py
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time
import wave
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from loguru import logger

logger.remove()

from pipecat.frames.frames import InputAudioRawFrame
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.tests.utils import SleepFrame, run_test

from pipelines.live.beep import BeepDetector
from pipelines.live.voicemail import VoicemailDetector

RATE, FRAME = 16000, 320
DATA = ROOT / "tests" / "data"


def wav(name: str) -> np.ndarray:
    with wave.open(str(DATA / name)) as w:
        return np.frombuffer(w.readframes(w.getnframes()), np.int16)


def trimmed(pcm: np.ndarray) -> np.ndarray:
    loud = np.flatnonzero(np.abs(pcm) > 300)
    return pcm[loud[0]:loud[-1] + 1]


def beep(secs: float = 0.5) -> np.ndarray:
    t = np.arange(int(secs * RATE)) / RATE
    return (0.25 * 32767 * np.sin(2 * np.pi * 1000 * t)).astype(np.int16)


def quiet(secs: float) -> np.ndarray:
    return np.zeros(int(secs * RATE), np.int16)


def stats(samples: list[float]) -> dict:
    samples = sorted(samples)
    return {"median_us": round(statistics.median(samples), 1),
            "p95_us": round(samples[int(0.95 * (len(samples) - 1))], 1), "frames": len(samples)}


def timed(processor: FrameProcessor, state=lambda: "all") -> dict[str, list[float]]:
    """Wrap ``process_frame`` to time each audio frame, filed under the processor's state at its start."""
    times, original = defaultdict(list), processor.process_frame

    async def process_frame(frame, direction):
        if not isinstance(frame, InputAudioRawFrame):
            return await original(frame, direction)
        key, start = state(), time.perf_counter_ns()
        await original(frame, direction)
        times[key].append((time.perf_counter_ns() - start) / 1000)
    processor.process_frame = process_frame
    return times


def frames_of(pcm: np.ndarray) -> list:
    out = []
    for i in range(0, len(pcm), FRAME):
        out += [InputAudioRawFrame(audio=pcm[i:i + FRAME].tobytes(), sample_rate=RATE, num_channels=1),
                SleepFrame(sleep=0.0005)]
    return out


def detector_run(pcm: np.ndarray) -> tuple[dict, dict]:
    detector = VoicemailDetector()
    times = timed(detector, lambda: detector.outcome if detector._listening or detector.outcome != "machine"
                  else "machine, message left")
    asyncio.run(run_test(detector, frames_to_send=frames_of(pcm), expected_down_frames=None))
    return times, detector.result


class Plain(FrameProcessor):
    async def process_frame(self, frame, direction):
        await super().process_frame(frame, direction)
        await self.push_frame(frame, direction)


def direct(processor: FrameProcessor, pcm: np.ndarray, until=lambda: False) -> list[float]:
    """``process_frame`` called directly for each frame of ``pcm`` (stops when ``until()``)."""
    async def run():
        times = []
        for i in range(0, len(pcm), FRAME):
            frame = InputAudioRawFrame(audio=pcm[i:i + FRAME].tobytes(), sample_rate=RATE, num_channels=1)
            start = time.perf_counter_ns()
            await processor.process_frame(frame, FrameDirection.DOWNSTREAM)
            times.append((time.perf_counter_ns() - start) / 1000)
            if until():
                break
        return times
    return asyncio.run(run())


def main() -> None:
    speech = [trimmed(wav(n)) for n in ("booking_1_start.wav", "caller_hours.wav", "caller_book.wav")]
    # A machine: one greeting of three sentences with short pauses, a beep, silence.
    greeting = np.concatenate([speech[0], quiet(0.3), speech[1], quiet(0.3), speech[2]])
    machine = np.concatenate([quiet(0.5), greeting, quiet(0.3), beep(), quiet(2.0)])
    # A person: "Thank you, goodbye." and then 30 s of the call.
    person = np.concatenate([quiet(0.5), trimmed(wav("caller_bye.wav")), quiet(1.0),
                             np.tile(np.concatenate([speech[1], quiet(1.0)]), 10)])

    beep_times, detector = [], BeepDetector()
    for _ in range(3):
        for i in range(0, len(machine), FRAME):
            start = time.perf_counter_ns()
            detector.feed(machine[i:i + FRAME].tobytes())
            beep_times.append((time.perf_counter_ns() - start) / 1000)
    analysing = []
    for _ in range(10):  # the person's first words, up to the human verdict
        detector = VoicemailDetector()
        analysing += direct(detector, person, until=lambda d=detector: d.outcome != "unknown")
    human = direct(detector, person)  # the last one, decided
    plain = direct(Plain(), person)

    machine_times, machine_result = detector_run(machine)
    person_times, person_result = detector_run(person)
    plain_in_pipeline = Plain()
    plain_times = timed(plain_in_pipeline)
    asyncio.run(run_test(plain_in_pipeline, frames_to_send=frames_of(person), expected_down_frames=None))

    print(json.dumps({
        "frame_ms": FRAME * 1000 // RATE,
        "direct_us": {"beep_feed": stats(beep_times), "analysing": stats(analysing), "human": stats(human),
                      "plain": stats(plain)},
        "in_pipeline_us": {"analysing": stats(machine_times["unknown"] + person_times["unknown"]),
                           "machine": stats(machine_times["machine"]),
                           "machine, message left": stats(machine_times["machine, message left"]),
                           "human": stats(person_times["human"]), "plain": stats(plain_times["all"])},
        "results": {"machine": machine_result, "person": person_result,
                    "machine_beep_end_s": round((len(machine) - 2.0 * RATE) / RATE, 3)},
    }, indent=2))


if __name__ == "__main__":
    main()
