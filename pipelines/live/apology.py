"""Speak one sentence (a refused call's apology) on a call's transport, then end."""

from __future__ import annotations

from pipecat.frames.frames import EndFrame, TTSSpeakFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.workers.runner import WorkerRunner

from pipelines.live.services import SharedPiperTTSService


async def say_and_close(transport, text: str) -> None:
    """A one-line pipeline: speak ``text`` through the shared Piper voice and end."""
    tts = SharedPiperTTSService()
    worker = PipelineWorker(Pipeline([transport.input(), tts, transport.output()]),
                            params=PipelineParams(audio_in_sample_rate=16000, audio_out_sample_rate=16000),
                            idle_timeout_secs=None, enable_rtvi=False, enable_turn_tracking=False)
    await worker.queue_frames([TTSSpeakFrame(text, append_to_context=False), EndFrame()])
    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    await runner.run()
