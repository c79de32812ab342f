"""End the caller's turn by what the transcript says, not by one fixed pause.

``SpeechTimeoutUserTurnStopStrategy`` waits a fixed time after the VAD stop
before it releases the turn: long enough for a caller who pauses mid-sentence
("Hi, ... what are your opening hours?"), dead time on every turn whose words
are already complete. Whisper punctuates, so once the final transcript is in,
the pause the turn needs is read from it (``pause_for``):

- two or more words ending in ``.``, ``?`` or ``!`` read as finished: the turn
  ends after ``complete_timeout``;
- a transcript ending in a digit waits ``digits_timeout``: callers pause
  between the groups of a phone number ("2 1 2" ... "5 5 5" ... "0123");
- a transcript ending in a comma, a dash or an ellipsis ("Hello,", "Yes, ...")
  is mid-sentence and waits ``unfinished_timeout``;
- anything else ("Hi.", "I'd like to") waits ``user_speech_timeout`` as before.

Every pause is counted from the VAD stop, not from the transcript's arrival, so
the turn ends at the same point of the caller's silence however long Whisper
took. A slow transcript (a loaded machine) used to arrive after the short
default pause had run out and end the turn at once, between the groups of a
phone number.

The VAD stop itself (0.2 s of silence) always comes first.
"""

from __future__ import annotations

import time

from pipecat.frames.frames import TranscriptionFrame, VADUserStoppedSpeakingFrame
from pipecat.turns.user_stop import SpeechTimeoutUserTurnStopStrategy

TERMINAL = ".?!"
CONTINUING = (",", "...", "…", "-", "–", "—", ";", ":")


def ends_in_digits(text: str) -> bool:
    return text.strip().rstrip(TERMINAL + ",").rstrip()[-1:].isdigit()


def trails_off(text: str) -> bool:
    """A comma, dash or ellipsis at the end: the caller paused mid-sentence."""
    return text.strip().endswith(CONTINUING)


def reads_as_finished(text: str) -> bool:
    text = text.strip()
    if len(text.split()) < 2 or text[-1:] not in TERMINAL or trails_off(text):
        return False
    return not ends_in_digits(text)


class PunctuationTurnStopStrategy(SpeechTimeoutUserTurnStopStrategy):
    def __init__(self, *, complete_timeout: float = 0.0, digits_timeout: float = 0.8,
                 unfinished_timeout: float = 0.7, **kwargs):
        super().__init__(**kwargs)
        self._complete_timeout = complete_timeout
        self._digits_timeout = digits_timeout
        self._unfinished_timeout = unfinished_timeout
        self._vad_stopped_at = 0.0

    def pause_for(self, text: str) -> float:
        """Seconds of silence after the VAD stop that end a turn reading ``text``."""
        if ends_in_digits(text):
            return self._digits_timeout
        if trails_off(text):
            return self._unfinished_timeout
        if reads_as_finished(text):
            return self._complete_timeout
        return self._user_speech_timeout

    async def _handle_vad_user_stopped_speaking(self, frame: VADUserStoppedSpeakingFrame):
        self._vad_stopped_at = time.monotonic()
        await super()._handle_vad_user_stopped_speaking(frame)

    async def _handle_transcription(self, frame: TranscriptionFrame):
        if not (frame.finalized and self._vad_stopped and not self._vad_user_speaking):
            await super()._handle_transcription(frame)
            return
        # The final transcript after a VAD stop: it, not the fixed timer, sets the pause.
        self._text += frame.text
        self._transcript_finalized = True
        self._stt_wait_done = True
        if self._stt_timeout_task:
            await self.task_manager.cancel_task(self._stt_timeout_task)
            self._stt_timeout_task = None
        remaining = self.pause_for(self._text) - (time.monotonic() - self._vad_stopped_at)
        if self._user_speech_timeout_task:
            await self.task_manager.cancel_task(self._user_speech_timeout_task)
            self._user_speech_timeout_task = None
        if remaining > 0:
            self._user_speech_wait_done = False
            self._user_speech_timeout_task = self.task_manager.create_task(
                self._user_speech_timeout_handler(remaining), f"{self}::_user_speech_timeout_handler")
        else:
            self._user_speech_wait_done = True
            await self._maybe_trigger_user_turn_stopped()
