"""Local models loaded once per process and shared by every call.

A call never loads a model: the runner (or ``simulate_call``) calls
``registry.preload()`` at start-up and each call's services borrow the loaded
objects. Whisper (CTranslate2) and Piper (onnxruntime) are safe to call from
several threads; Silero shares only its ONNX session, each call keeps its own
recurrent state (see ``pipelines.live.services.SharedSileroVADAnalyzer``).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("DO_NOT_TRACK", "true")
# Whisper, Piper and the LLM share 2 cores: threads that spin while waiting steal
# the cores the others need, so every pool here sleeps instead of spinning.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from voicebot import local_models  # noqa: E402

WHISPER_THREADS = int(os.environ.get("VOICEBOT_WHISPER_THREADS", "2"))
# Piper syntheses that run at once in a runner process (pipelines/live/services.py).
TTS_CONCURRENCY = int(os.environ.get("VOICEBOT_TTS_CONCURRENCY", str(os.cpu_count() or 2)))


def limit_malloc_arenas(arenas: int = 2) -> None:
    """Cap glibc's malloc arenas for the threads started after this.

    Every thread that runs a model (asyncio.to_thread, onnxruntime, CTranslate2)
    otherwise gets an arena of its own, and each keeps the peak of the largest
    inference it ran: four calls at once left the runner 500 MB bigger for good.
    Same as MALLOC_ARENA_MAX, which cannot be set from inside the process.
    """
    if os.environ.get("MALLOC_ARENA_MAX"):
        return
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").mallopt(-8, arenas)  # M_ARENA_MAX
    except (OSError, AttributeError):  # not glibc: nothing to tune
        pass


limit_malloc_arenas()


def _quiet_session(model_path: str, *, threads: int):
    """An onnxruntime CPU session whose idle threads sleep (no spinning).

    onnxruntime's arena keeps the peak of every run that was ever in flight at
    once, so a session with the arena on needs its concurrency bounded: Piper
    runs on ``TTS_CONCURRENCY`` pool threads (pipelines/live/services.py). Then
    the arena holds two runs' buffers for good and a call adds no more; without
    it, glibc kept a varying share of the freed buffers (10-170 MB per added
    call between runs, against 3-74 MB with the arena; bench/concurrency.py).
    """
    import onnxruntime

    opts = onnxruntime.SessionOptions()
    opts.inter_op_num_threads = 1
    opts.intra_op_num_threads = threads
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return onnxruntime.InferenceSession(model_path, sess_options=opts, providers=["CPUExecutionProvider"])


class ModelRegistry:
    def __init__(self):
        self._lock = threading.Lock()
        self._whisper: dict[str, object] = {}
        self._piper: dict[str, object] = {}
        self._silero = None
        self.loads = 0  # how many models this process has loaded (tests check calls load none)

    def whisper(self, name: str = ""):
        path = local_models.whisper_model(name)
        with self._lock:
            if path not in self._whisper:
                from faster_whisper import WhisperModel

                self._whisper[path] = WhisperModel(
                    path, device="cpu", compute_type="int8", cpu_threads=WHISPER_THREADS, num_workers=2
                )
                self.loads += 1
            return self._whisper[path]

    def piper(self, voice: str = ""):
        path = str(local_models.piper_voice(voice))
        with self._lock:
            if path not in self._piper:
                from piper import PiperVoice

                voice = PiperVoice.load(Path(path))
                voice.session = _quiet_session(path, threads=2)  # concurrency bounded: TTS_CONCURRENCY
                self._piper[path] = voice
                self.loads += 1
            return self._piper[path]

    def silero_session(self):
        with self._lock:
            if self._silero is None:
                from importlib import resources

                import onnxruntime

                opts = onnxruntime.SessionOptions()
                opts.inter_op_num_threads = 1
                opts.intra_op_num_threads = 1
                model = str(resources.files("pipecat.audio.vad.data").joinpath("silero_vad.onnx"))
                self._silero = onnxruntime.InferenceSession(model, providers=["CPUExecutionProvider"], sess_options=opts)
                self.loads += 1
            return self._silero

    def preload(self, stt_models=("",), voices=("",)) -> None:
        """Load the default (and named) models now, and warm them up once."""
        import numpy as np

        self.silero_session()
        for name in stt_models:
            model = self.whisper(name)
            segments, _ = model.transcribe(np.zeros(8000, dtype=np.float32), beam_size=1, without_timestamps=True)
            list(segments)
        for voice in voices:
            for _ in self.piper(voice).synthesize("Hello."):
                pass
        # Every call's brain matches phrases with the embedder: loaded now, not in the first caller's time
        # (its first start also builds the ONNX file, seconds on two cores).
        from pipelines.dialogue.embedder import default_embedder

        default_embedder()(["warm up"])


registry = ModelRegistry()
