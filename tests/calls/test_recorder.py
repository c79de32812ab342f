"""CallRecorder's transcript from frame hops, without models: the edge cases of interrupted lines."""

import asyncio

from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    InterruptionFrame,
    LLMContextFrame,
    TranscriptionFrame,
    TTSSpeakFrame,
    TTSTextFrame,
)
from pipecat.observers.base_observer import FramePushed
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

from pipelines.live.recorder import CallRecorder


class Hops:
    """Named stand-ins for the pipeline's processors and a way to push frames between them."""

    def __init__(self):
        self.input, self.stt, self.llm, self.tts, self.output = (FrameProcessor(name=n) for n in
                                                                 ("input", "stt", "llm", "tts", "output"))
        self.recorder = CallRecorder(input=self.input, stt=self.stt, llm=self.llm, tts=self.tts,
                                     output=self.output, record_audio=False)

    def push(self, frame, source, destination, direction=FrameDirection.DOWNSTREAM):
        asyncio.run(self.recorder.on_push_frame(FramePushed(
            source=source, destination=destination, frame=frame, direction=direction, timestamp=0)))


def test_a_greeting_cut_before_its_words_were_timed_keeps_its_text():
    """The caller talks as the line opens: the interruption lands before the greeting's first audio."""
    h = Hops()
    h.push(TTSSpeakFrame("Hello, Alpha Dental, how can I help?"), h.llm, h.tts)
    h.push(InterruptionFrame(), h.input, h.stt)
    h.push(BotStartedSpeakingFrame(), h.output, h.llm, FrameDirection.UPSTREAM)
    h.push(BotStoppedSpeakingFrame(), h.output, h.llm, FrameDirection.UPSTREAM)
    h.push(TranscriptionFrame("What are your opening hours?", "caller", "now"), h.stt, h.llm)
    h.push(LLMContextFrame(LLMContext()), h.input, h.llm)
    h.push(TTSTextFrame("We open at eight.", text_type="sentence"), h.tts, h.output)
    h.push(BotStartedSpeakingFrame(), h.output, h.llm, FrameDirection.UPSTREAM)
    h.push(TTSTextFrame("We open at eight.", text_type="sentence"), h.output, h.llm)
    h.push(BotStoppedSpeakingFrame(), h.output, h.llm, FrameDirection.UPSTREAM)

    assert [(t.role, t.text) for t in h.recorder.turn_records()] == [
        ("bot", "Hello, Alpha Dental, how can I help?"),
        ("caller", "What are your opening hours?"),
        ("bot", "We open at eight."),
    ]


def test_a_scripted_line_that_never_played_is_not_pinned_on_the_next_reply():
    h = Hops()
    h.push(TTSSpeakFrame("Are you still there?"), h.llm, h.tts)
    h.push(InterruptionFrame(), h.input, h.stt)  # dropped before any audio
    h.push(TranscriptionFrame("Yes.", "caller", "now"), h.stt, h.llm)
    h.push(LLMContextFrame(LLMContext()), h.input, h.llm)
    h.push(BotStartedSpeakingFrame(), h.output, h.llm, FrameDirection.UPSTREAM)
    h.push(TTSTextFrame("Good.", text_type="sentence"), h.output, h.llm)
    h.push(BotStoppedSpeakingFrame(), h.output, h.llm, FrameDirection.UPSTREAM)

    assert [(t.role, t.text) for t in h.recorder.turn_records()] == [("caller", "Yes."), ("bot", "Good.")]
