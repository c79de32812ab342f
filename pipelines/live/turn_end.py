"""End the caller's turn sooner when the transcript reads as finished.

``SpeechTimeoutUserTurnStopStrategy`` waits a fixed time after the VAD stop
before it releases the turn. That wait is what keeps a caller who pauses
mid-sentence ("Hi, ... what are your opening hours?") from being answered
half-way, but it is also dead time on every turn whose words are already
complete. Whisper punctuates: a final transcript of two or more words that
ends in ``.``, ``?`` or ``!`` releases the turn after ``complete_timeout``;
anything else ("Hi,", "I'd like to") still waits ``user_speech_timeout``, and so
does a transcript that ends in a digit: callers pause between the groups of a
phone number ("212." ... "555 0123.").
The VAD stop itself (0.2 s of silence) always comes first.
"""

from __future__ import annotations

from pipecat.frames.frames import TranscriptionFrame
from pipecat.turns.user_stop import SpeechTimeoutUserTurnStopStrategy

TERMINAL = ".?!"


def reads_as_finished(text: str) -> bool:
    text = text.strip()
    if len(text.split()) < 2 or text[-1:] not in TERMINAL or text.endswith("..."):
        return False
    return not text.rstrip(TERMINAL).rstrip()[-1:].isdigit()


class PunctuationTurnStopStrategy(SpeechTimeoutUserTurnStopStrategy):
    def __init__(self, *, complete_timeout: float = 0.05, **kwargs):
        super().__init__(**kwargs)
        self._complete_timeout = complete_timeout

    async def _handle_transcription(self, frame: TranscriptionFrame):
        await super()._handle_transcription(frame)
        finished = frame.finalized and reads_as_finished(self._text)
        if finished and self._vad_stopped and not self._vad_user_speaking and not self._user_speech_wait_done:
            # Cut the remaining policy wait short; the caller has said something whole.
            if self._user_speech_timeout_task:
                await self.task_manager.cancel_task(self._user_speech_timeout_task)
            self._user_speech_timeout_task = self.task_manager.create_task(
                self._user_speech_timeout_handler(self._complete_timeout),
                f"{self}::_complete_timeout_handler",
            )
