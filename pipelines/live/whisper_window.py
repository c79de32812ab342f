"""Transcribe one short caller utterance with an encoder window sized to it.

faster-whisper always pads the mel features to Whisper's 30 s window, so a
two-second "What are your opening hours?" pays for thirty seconds of encoder
work: most of the STT time of a phone turn. CTranslate2's encoder takes a
shorter input, so here the features are padded only to the utterance plus
``pad_secs`` of silence (whisper.cpp's ``audio_ctx`` trick).

A shortened window sometimes makes the decoder loop ("on Friday, on Friday,
on Friday..."), drop words or doubt that it heard speech at all. Whisper's own
remedy for a bad pass is a second one, and so is this: when the fast pass
repeats itself, runs out of tokens, gives too few characters for the audio's
length or scores no-speech above its bar, the utterance is transcribed again
with the full window (``full_transcribe``), which also judges silence.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16000
MAX_WINDOW_SECS = 30.0
# Ten characters said twice in one short turn is almost always a decoder loop
# ("on Friday, on Friday, on Friday"); a rare real repeat only costs the second pass.
LOOP_WINDOW = 10
SENTENCE_END = re.compile(r"[.?!]\s+")
# Fewer characters than this per second of audio means the short window dropped words
# (seen: "two one two, five five five" heard as "555"); ask the full window.
MIN_CHARS_PER_SEC = 2.0


# The short window's no-speech probability runs higher than the full window's for the same
# speech ("What are your opening hours?" 0.44 vs 0.12, "two one two" 0.56 vs 0.33), so it
# has its own bar; above it the full window decides whether anything was said.
FAST_NO_SPEECH_MAX = 0.6


@dataclass
class Transcript:
    text: str  # empty when Whisper judged the audio not to be speech
    no_speech_prob: float
    full_window: bool  # True when the fast pass was rejected and the 30 s window was used


def looks_like_a_loop(text: str) -> bool:
    text = text.lower()
    return any(text.find(text[i:i + LOOP_WINDOW], i + LOOP_WINDOW) != -1 for i in range(len(text) - LOOP_WINDOW))


def without_echo(text: str) -> str:
    """``text`` cut where, after a sentence end, it starts over ("Hi, what are your hours? Hi, what are").

    The short window's silent padding sometimes makes Whisper read the utterance a second
    time instead of ending; the first reading is the transcript.
    """
    lowered = text.lower()
    for end in SENTENCE_END.finditer(text):
        rest = lowered[end.end():].rstrip(" .?!,")
        if len(rest) >= LOOP_WINDOW and lowered.startswith(rest):
            return text[: end.end()].strip()
    return text


@lru_cache(maxsize=8)
def _decoding(model) -> tuple:
    """(tokenizer, suppressed tokens, log-mel column of silence) for one faster-whisper model."""
    from faster_whisper.tokenizer import Tokenizer
    from faster_whisper.transcribe import get_suppressed_tokens

    multilingual = model.model.is_multilingual
    tokenizer = Tokenizer(model.hf_tokenizer, multilingual, task="transcribe",
                          language="en" if multilingual else None)
    suppressed = get_suppressed_tokens(tokenizer, [-1])
    silence = model.feature_extractor(np.zeros(SAMPLE_RATE, np.float32))[:, :1]
    return tokenizer, suppressed, silence


def _prompt(model, tokenizer, language: str | None) -> list[int] | None:
    """The decoder prompt; None when the fast pass cannot know the language (the full window detects it)."""
    if not model.model.is_multilingual:
        return list(tokenizer.sot_sequence) + [tokenizer.no_timestamps]
    language_token = tokenizer.tokenizer.token_to_id(f"<|{language}|>") if language else None
    if language_token is None:
        return None
    return [tokenizer.sot, language_token, tokenizer.transcribe, tokenizer.no_timestamps]


def fast_transcribe(model, audio: np.ndarray, *, language: str | None = None, pad_secs: float = 2.0,
                    no_speech_max: float = FAST_NO_SPEECH_MAX) -> Transcript | None:
    """One greedy pass over a window sized to ``audio`` (float32, 16 kHz); None if it looks wrong."""
    import ctranslate2

    duration = len(audio) / SAMPLE_RATE
    tokenizer, suppressed, silence = _decoding(model)
    prompt = _prompt(model, tokenizer, language)
    if prompt is None or duration + pad_secs >= MAX_WINDOW_SECS:
        return None
    features = model.feature_extractor(audio)
    frames = features.shape[1] + int(pad_secs * 100)
    frames += frames % 2  # the encoder's stride-2 convolution
    window = np.repeat(silence, frames, axis=1)
    window[:, : features.shape[1]] = features[:, :frames]
    max_tokens = int(8 + duration * 8)  # fast speech is ~4 tokens a second
    result = model.model.generate(
        ctranslate2.StorageView.from_array(np.ascontiguousarray(window[None])), [prompt],
        beam_size=1, max_length=len(prompt) + max_tokens, suppress_blank=True,
        suppress_tokens=list(suppressed), return_no_speech_prob=True,
    )[0]
    tokens = result.sequences_ids[0]
    text = without_echo(tokenizer.decode([t for t in tokens if t < tokenizer.eot]).strip())
    reason = None
    if len(tokens) >= max_tokens:
        reason = "no end-of-text"
    elif looks_like_a_loop(text):
        reason = "a loop"
    elif text and len(text) < MIN_CHARS_PER_SEC * duration:
        reason = "too few characters"
    elif result.no_speech_prob >= no_speech_max:
        reason = f"no-speech {result.no_speech_prob:.2f}"
    if reason:
        logger.debug("fast pass over %.2f s rejected (%s): %r", duration, reason, text)
        return None
    return Transcript(text, result.no_speech_prob, full_window=False)


def full_transcribe(model, audio: np.ndarray, *, language: str | None = None,
                    no_speech_threshold: float = 0.4) -> Transcript:
    """faster-whisper's own path (30 s window), greedy, for what the fast pass rejected."""
    segments, _ = model.transcribe(
        audio, language=language if model.model.is_multilingual else None,
        beam_size=1, without_timestamps=True, vad_filter=False, condition_on_previous_text=False,
    )
    segments = list(segments)
    text = " ".join(s.text.strip() for s in segments if s.no_speech_prob < no_speech_threshold).strip()
    no_speech = min((s.no_speech_prob for s in segments), default=1.0)
    return Transcript(text, no_speech, full_window=True)


def transcribe_utterance(model, audio: np.ndarray, *, language: str | None = None,
                         pad_secs: float | None = 2.0, no_speech_threshold: float = 0.4) -> Transcript:
    """The fast pass when it can be trusted, else the full window; ``pad_secs=None``: full window only."""
    quick = None if pad_secs is None else fast_transcribe(model, audio, language=language, pad_secs=pad_secs)
    return quick or full_transcribe(model, audio, language=language, no_speech_threshold=no_speech_threshold)
