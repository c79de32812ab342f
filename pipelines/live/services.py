"""Pipecat services that borrow the process-wide models instead of loading their own."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import AsyncGenerator, Iterator

import numpy as np
from django.conf import settings
from loguru import logger
from pipecat.audio.vad.silero import SileroOnnxModel, SileroVADAnalyzer
from pipecat.audio.vad.vad_analyzer import VADAnalyzer, VADParams
from pipecat.frames.frames import ErrorFrame, Frame, LLMTextFrame, TranscriptionFrame
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.frame_processor import FrameDirection
from pipecat.services.ollama.llm import OLLamaLLMService
from pipecat.services.piper.tts import PiperTTSService
from pipecat.services.stt_service import STTService
from pipecat.services.tts_service import TTSService
from pipecat.services.whisper.stt import WhisperSTTService
from pipecat.utils.time import time_now_iso8601

from pipelines.live.text_chunks import FirstClauseTextAggregator
from pipelines.live.whisper_window import transcribe_utterance
from pipelines.model_registry import TTS_CONCURRENCY, registry

# Piper syntheses of all the process's calls share these threads: at most one per
# core runs at a time. More only oversubscribe the cores (the session already has
# two intra-op threads), and each concurrent run holds its own inference buffers,
# which glibc keeps after they are freed.
_TTS_POOL = ThreadPoolExecutor(max_workers=TTS_CONCURRENCY, thread_name_prefix="piper")


class SharedWhisperSTTService(WhisperSTTService):
    """faster-whisper from the registry, tuned for latency, with honest finalisation.

    ``SegmentedSTTService`` marks every transcript final, so a pause longer than
    the VAD stop time releases the turn with half an utterance. Here a
    transcript is final only when the caller is quiet and no segment is queued.
    """

    def __init__(self, *, model_name: str = "", on_failure=None, window_pad_secs: float | None = 2.0, **kwargs):
        self._registry_model_name = model_name
        self.on_failure = on_failure  # async callable(exc): the call ends politely
        # Encoder window = the utterance + this much silence (None: Whisper's full 30 s); see whisper_window.
        self.window_pad_secs = window_pad_secs
        self.full_window_passes = 0
        kwargs.setdefault("trailing_silence_secs", 0.2)
        super().__init__(settings=WhisperSTTService.Settings(model=model_name or "tiny.en"), **kwargs)

    def _load(self):
        self._model = registry.whisper(self._registry_model_name)

    async def push_frame(self, frame: Frame, direction: FrameDirection = FrameDirection.DOWNSTREAM):
        # Skip SegmentedSTTService.push_frame, which marks every transcript final.
        await STTService.push_frame(self, frame, direction)

    async def run_stt(self, audio: bytes) -> AsyncGenerator[Frame, None]:
        if not self._model:
            yield ErrorFrame("Whisper model not available")
            return
        await self.start_processing_metrics()
        audio_float = np.frombuffer(audio, dtype=np.int16).astype(np.float32) / 32768.0
        language = self._settings.language
        model = self._model

        try:
            transcript = await asyncio.to_thread(
                transcribe_utterance, model, audio_float, language=language, pad_secs=self.window_pad_secs,
                no_speech_threshold=self._settings.no_speech_prob)
        except Exception as exc:  # noqa: BLE001 - logged; the call ends politely, its record is kept
            logger.exception("transcription failed")
            await self.stop_processing_metrics()
            if self.on_failure is not None:
                await self.on_failure(exc)
            return
        self.full_window_passes += transcript.full_window
        text = transcript.text
        await self.stop_processing_metrics()
        if text:
            frame = TranscriptionFrame(text, self._user_id, time_now_iso8601(), language)
            # Final only when the caller is quiet and nothing else waits to be transcribed.
            frame.finalized = not self._user_speaking and self._segment_queue.empty()
            logger.debug(f"Transcription: [{text}] finalized={frame.finalized}")
            yield frame


class SharedPiperTTSService(PiperTTSService):
    """Piper with the registry's loaded voice (the parent would load the .onnx per call)."""

    def __init__(self, *, voice: str = "", on_failure=None, **kwargs):
        self.on_failure = on_failure  # async callable(exc): the call ends (nothing can be said)
        TTSService.__init__(
            self, push_start_frame=True, push_stop_frames=True,
            settings=PiperTTSService.Settings(model=None, voice=voice or "default", language=None), **kwargs,
        )
        self._voice = registry.piper(voice)
        self._text_aggregator = FirstClauseTextAggregator()

    async def run_tts(self, text: str, context_id: str) -> AsyncGenerator[Frame, None]:
        """PiperTTSService.run_tts with the synthesis on the shared, bounded TTS threads."""
        try:
            await self.start_tts_usage_metrics(text)
            async for frame in self._stream_audio_frames_from_iterator(
                self._synthesized(text), in_sample_rate=self._voice.config.sample_rate, context_id=context_id,
            ):
                await self.stop_ttfb_metrics()
                yield frame
        except Exception as exc:  # noqa: BLE001 - nothing more can be said: the call ends, its record is kept
            logger.error(f"TTS failed: {exc}")
            yield ErrorFrame(error=f"TTS failed: {exc}")
            if self.on_failure is not None:
                await self.on_failure(exc)
        finally:
            await self.stop_ttfb_metrics()

    async def _synthesized(self, text: str) -> AsyncGenerator[bytes, None]:
        """Piper's audio chunks (one per sentence), each synthesized on the TTS pool."""
        chunks: Iterator = self._voice.synthesize(text)
        loop = asyncio.get_running_loop()
        while (chunk := await loop.run_in_executor(_TTS_POOL, next, chunks, None)) is not None:
            yield chunk.audio_int16_bytes


class SharedSileroVADAnalyzer(SileroVADAnalyzer):
    """Silero with the registry's ONNX session; the recurrent state stays per call."""

    def __init__(self, *, sample_rate: int | None = None, params: VADParams | None = None):
        VADAnalyzer.__init__(self, sample_rate=sample_rate, params=params)
        model = SileroOnnxModel.__new__(SileroOnnxModel)
        model.session = registry.silero_session()
        model.reset_states()
        model.sample_rates = [8000, 16000]
        self._model = model
        self._windows_since_reset = 0
        self._low_confidence_windows = 0


class FallbackLLMService(OLLamaLLMService):
    """The OpenAI-compatible LLM; on an error, or no first token in ``first_token_timeout``, it says the
    fallback phrase instead.

    The error is logged and not pushed as an ErrorFrame, so the service stays
    usable and the call goes on with the next turn. A hung server (connection
    open, nothing streamed) is cut off at the first-token limit rather than
    leaving the caller in silence.
    """

    def __init__(self, *, fallback_phrase: str, first_token_timeout: float | None = None, **kwargs):
        super().__init__(**kwargs)
        self._fallback_phrase = fallback_phrase
        self._first_token_timeout = (first_token_timeout if first_token_timeout is not None
                                     else settings.LLM_FIRST_TOKEN_TIMEOUT_SEC)
        self.failures = 0
        self._spoke = False
        self._first_token: asyncio.Event | None = None

    async def _process_context(self, context: LLMContext):
        self._spoke = False
        self._first_token = asyncio.Event()
        answer = asyncio.ensure_future(super()._process_context(context))
        first = asyncio.ensure_future(self._first_token.wait())
        try:
            done, _ = await asyncio.wait({answer, first}, timeout=self._first_token_timeout,
                                         return_when=asyncio.FIRST_COMPLETED)
            if not done:
                answer.cancel()
                raise TimeoutError(f"no first token within {self._first_token_timeout:.1f} s")
            await answer
        except asyncio.CancelledError:
            answer.cancel()  # an interruption: the caller spoke over the bot
            raise
        except Exception as exc:  # noqa: BLE001
            self.failures += 1
            logger.error(f"LLM failed ({type(exc).__name__}: {exc}); speaking the fallback phrase")
            if not self._spoke:
                await self.push_frame(LLMTextFrame(self._fallback_phrase))
        finally:
            first.cancel()

    async def push_frame(self, frame: Frame, direction: FrameDirection = FrameDirection.DOWNSTREAM):
        if isinstance(frame, LLMTextFrame):
            self._spoke = True
            if self._first_token is not None:
                self._first_token.set()
        await super().push_frame(frame, direction)
