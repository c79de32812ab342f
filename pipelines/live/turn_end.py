"""End the caller's turn by what the transcript says, not by one fixed pause.

``SpeechTimeoutUserTurnStopStrategy`` waits a fixed time after the VAD stop
before it releases the turn: long enough for a caller who pauses mid-sentence
("Hi, ... what are your opening hours?"), dead time on every turn whose words
are already complete. Whisper punctuates, so once the final transcript is in:

- two or more words ending in ``.``, ``?`` or ``!`` read as finished: the turn
  ends after ``complete_timeout``;
- a transcript ending in a digit waits ``digits_timeout``: callers pause
  between the groups of a phone number ("2 1 2" ... "5 5 5" ... "0123");
- anything else ("Hi,", "I'd like to") waits ``user_speech_timeout`` as before.

The VAD stop itself (0.2 s of silence) always comes first.
"""

from __future__ import annotations

from pipecat.frames.frames import TranscriptionFrame
from pipecat.turns.user_stop import SpeechTimeoutUserTurnStopStrategy

TERMINAL = ".?!"


def ends_in_digits(text: str) -> bool:
    return text.strip().rstrip(TERMINAL + ",").rstrip()[-1:].isdigit()


def reads_as_finished(text: str) -> bool:
    text = text.strip()
    if len(text.split()) < 2 or text[-1:] not in TERMINAL or text.endswith("..."):
        return False
    return not ends_in_digits(text)


class PunctuationTurnStopStrategy(SpeechTimeoutUserTurnStopStrategy):
    def __init__(self, *, complete_timeout: float = 0.0, digits_timeout: float = 0.8, **kwargs):
        super().__init__(**kwargs)
        self._complete_timeout = complete_timeout
        self._digits_timeout = digits_timeout

    async def _handle_transcription(self, frame: TranscriptionFrame):
        await super()._handle_transcription(frame)
        waiting = self._vad_stopped and not self._vad_user_speaking and not self._user_speech_wait_done
        if not (frame.finalized and waiting):
            return
        if reads_as_finished(self._text):
            await self._restart_wait(self._complete_timeout)
        elif ends_in_digits(self._text):
            await self._restart_wait(self._digits_timeout)

    async def _restart_wait(self, timeout: float):
        if self._user_speech_timeout_task:
            await self.task_manager.cancel_task(self._user_speech_timeout_task)
        self._user_speech_timeout_task = self.task_manager.create_task(
            self._user_speech_timeout_handler(timeout), f"{self}::_user_speech_timeout_handler")
