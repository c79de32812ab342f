"""PunctuationTurnStopStrategy: the pause that ends a caller's turn is read from the transcript."""

import asyncio

from pipecat.clocks.system_clock import SystemClock
from pipecat.frames.frames import TranscriptionFrame, VADUserStartedSpeakingFrame, VADUserStoppedSpeakingFrame
from pipecat.processors.frame_processor import FrameProcessorSetup
from pipecat.utils.asyncio.task_manager import TaskManager

from pipelines.live.turn_end import PunctuationTurnStopStrategy, reads_as_finished, trails_off

PAUSES = dict(user_speech_timeout=0.3, complete_timeout=0.0, digits_timeout=0.8, unfinished_timeout=0.6)


def final(text: str) -> TranscriptionFrame:
    frame = TranscriptionFrame(text, "caller", "now")
    frame.finalized = True
    return frame


async def started_strategy():
    loop = asyncio.get_running_loop()
    strategy = PunctuationTurnStopStrategy(**PAUSES)
    await strategy.setup(FrameProcessorSetup(clock=SystemClock(), task_manager=TaskManager(loop=loop),
                                             pipeline_worker=None))
    stopped = asyncio.Event()

    @strategy.event_handler("on_user_turn_stopped")
    async def _stopped(_strategy, *args):
        stopped.set()

    return strategy, stopped


def turn_end_after(text: str, stt_secs: float = 0.0) -> float:
    """Seconds from the VAD stop to the turn end, with the transcript arriving ``stt_secs`` after it."""

    async def run() -> float:
        loop = asyncio.get_running_loop()
        strategy, stopped = await started_strategy()
        await strategy.process_frame(VADUserStartedSpeakingFrame())
        await strategy.process_frame(VADUserStoppedSpeakingFrame(stop_secs=0.2))
        start = loop.time()
        await asyncio.sleep(stt_secs)
        await strategy.process_frame(final(text))
        await asyncio.wait_for(stopped.wait(), 3)
        await strategy.cleanup()
        return loop.time() - start

    return asyncio.run(run())


def test_what_reads_as_finished():
    assert reads_as_finished("What are your opening hours?") and reads_as_finished("Half past four.")
    assert not reads_as_finished("Hi,") and not reads_as_finished("Hi.")  # one word: maybe more to come
    assert not reads_as_finished("I would like to") and not reads_as_finished("Well, I think...")
    assert not reads_as_finished("My number is 212.")  # digit groups come with pauses between them
    assert trails_off("Hello,") and trails_off("Yes, well -") and not trails_off("Hello.")


def test_turn_stop_waits_less_for_a_finished_sentence_than_for_a_fragment():
    assert turn_end_after("What are your opening hours?") < 0.2
    assert 0.25 <= turn_end_after("Hi.") < 0.55
    assert turn_end_after("Hello,") >= 0.55  # a comma: the sentence goes on
    assert turn_end_after("2 1 2") >= 0.75  # more digit groups may follow


def test_the_pause_counts_from_the_vad_stop_however_slow_the_transcript():
    # Whisper on a loaded box can take longer than the default pause. The digit pause
    # must still run its full length from the VAD stop, not end the turn on arrival ...
    assert 0.75 <= turn_end_after("2 1 2", stt_secs=0.45) < 1.0
    assert 0.55 <= turn_end_after("Hello,", stt_secs=0.45) < 0.8
    # ... and a slow transcript adds no pause of its own once it is due.
    assert turn_end_after("What are your opening hours?", stt_secs=0.4) < 0.6
    assert turn_end_after("Hi.", stt_secs=0.45) < 0.65


def test_the_next_digit_group_keeps_the_turn_open():
    async def run() -> bool:
        strategy, stopped = await started_strategy()
        await strategy.process_frame(VADUserStartedSpeakingFrame())
        await strategy.process_frame(VADUserStoppedSpeakingFrame(stop_secs=0.2))
        await asyncio.sleep(0.4)
        await strategy.process_frame(final("2 1 2"))
        await asyncio.sleep(0.1)
        await strategy.process_frame(VADUserStartedSpeakingFrame())  # "5 5 5"
        ended_early = stopped.is_set()
        await asyncio.sleep(1.0)  # still speaking: no turn end however long
        ended_while_speaking = stopped.is_set()
        await strategy.process_frame(VADUserStoppedSpeakingFrame(stop_secs=0.2))
        await strategy.process_frame(final(" 555, 0123."))
        await asyncio.wait_for(stopped.wait(), 3)
        await strategy.cleanup()
        return ended_early or ended_while_speaking

    assert asyncio.run(run()) is False
