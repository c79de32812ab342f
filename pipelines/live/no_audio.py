"""End a call whose caller never sends audio, so a dead or forged connection holds no line.

``CallerAudioWatch`` sits right after the transport's input and notes the first
audio frame; ``LiveCall.run`` waits that long (``CALLS_NO_AUDIO_TIMEOUT_SEC``)
and ends the call if nothing came: a WebRTC peer that never connects, a stream
that sends ``start`` and then nothing, a Daily room the caller never joins.
"""

from __future__ import annotations

import asyncio

from pipecat.frames.frames import Frame, InputAudioRawFrame
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor


class CallerAudioWatch(FrameProcessor):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.heard = asyncio.Event()

    async def process_frame(self, frame: Frame, direction: FrameDirection):
        await super().process_frame(frame, direction)
        if not self.heard.is_set() and isinstance(frame, InputAudioRawFrame):
            self.heard.set()
        await self.push_frame(frame, direction)
