"""Build one call's Pipecat pipeline from an immutable BotConfig, run it, store it at hang-up.

transport in -> Whisper STT -> user aggregator (Silero VAD, turn end)
-> [scenario slot] -> CallGuard -> [knowledge injection] -> LLM -> Piper TTS
-> transport out -> assistant aggregator; a CallRecorder observer keeps the
transcript, timings and audio in memory. Nothing here touches the database
until ``LiveCall.run`` returns, when one ``save_call_record`` stores the call.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Callable

from django.conf import settings
from django.utils import timezone
from loguru import logger
from pipecat.audio.vad.vad_analyzer import VADParams
from pipecat.frames.frames import EndWorkerFrame, TTSSpeakFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import (
    LLMAssistantAggregatorParams,
    LLMContextAggregatorPair,
    LLMUserAggregatorParams,
)
from pipecat.turns.user_start import TranscriptionUserTurnStartStrategy, VADUserTurnStartStrategy
from pipecat.turns.user_turn_strategies import UserTurnStrategies
from pipecat.workers.runner import WorkerRunner

from pipelines.call_store import save_call_record
from pipelines.config import BotConfig
from pipelines.dialogue.chat import stored_explanation
from pipelines.dialogue.grounding_processor import GroundingProcessor
from pipelines.dialogue.keypad import KeypadCollector
from pipelines.dialogue.processor import ScenarioProcessor
from pipelines.dialogue.prompt import reply_tokens, system_instruction
from pipelines.dialogue.reply_guard import grounding_metrics
from pipelines.live.db import in_db_thread
from pipelines.live.no_audio import CallerAudioWatch
from pipelines.live.outbound import OutboundOpening
from pipelines.live.recorder import CallRecorder
from pipelines.live.services import (
    FallbackLLMService,
    SharedPiperTTSService,
    SharedSileroVADAnalyzer,
    SharedWhisperSTTService,
)
from pipelines.live.turn_end import PunctuationTurnStopStrategy
from pipelines.live.voicemail import VoicemailDetector
from telephony.base import HUMAN, MACHINE, MACHINE_AFTER_GREETING, CallControl
from voicebot import llm_endpoint

std_logger = logging.getLogger(__name__)

DEFAULT_FALLBACK = "Sorry, I didn't catch that. Could you say it again?"
TRANSFER_FAILED = "I'm sorry, I couldn't put you through. Please call again later. Goodbye."
TECHNICAL_TROUBLE = "Sorry, we are having technical trouble. Please call again later. Goodbye."


@dataclass
class TurnTuning:
    """Turn-taking knobs; the defaults are the measured low-latency set (see bench/)."""

    vad_start_secs: float = 0.25  # speech shorter than this ("mm") does not interrupt the bot
    vad_stop_secs: float = 0.2
    vad_confidence: float = 0.7
    speech_timeout_secs: float = 0.25  # turn-end wait after the VAD stop (Whisper runs meanwhile)
    complete_turn_secs: float = 0.0  # ... cut to this once the transcript reads as finished (turn_end.py)
    digits_turn_secs: float = 0.8  # ... stretched to this after a digit group (phone numbers)
    unfinished_turn_secs: float = 0.7  # ... and to this after a trailing comma or dash ("Hello, ...")
    stt_trailing_silence_secs: float = 0.2


@dataclass
class CallState:
    """What the call's brain and transport decided; read at hang-up."""

    end_reason: str = "caller_hangup"
    status: str = "completed"
    transferred_to: str = ""
    ending: bool = False
    caller_left: bool = False
    notes: list = field(default_factory=list)


@dataclass
class CallInfo:
    transport: str
    external_id: str = ""
    from_number: str = ""
    to_number: str = ""
    direction: str = "inbound"
    outbound_call: int | None = None  # the placed Call row an outbound call is stored into
    answered_by: str = ""  # the provider's answering-machine verdict (telephony.base.MACHINE_VERDICTS)


@dataclass
class LiveCall:
    config: BotConfig
    info: CallInfo
    worker: PipelineWorker
    context: LLMContext
    recorder: CallRecorder
    state: CallState
    control: CallControl
    llm: FallbackLLMService
    user_aggregator: object
    scenario: ScenarioProcessor = None  # the conversation brain (every call has one)
    grounding: GroundingProcessor = None
    audio_watch: CallerAudioWatch | None = None
    opening: OutboundOpening | None = None  # outbound calls: the greeting waits for the callee
    machine: VoicemailDetector | None = None  # ... and an answering machine gets the voicemail message
    lease: object = None  # the admission gate's line (runner.CallHub.start_call)
    started_at: object = field(default_factory=timezone.now)
    record: object = None
    saved_call: object = None
    stored_attempted: bool = False

    async def greet(self) -> None:
        if self.opening is not None:
            return  # an outbound call greets the callee once they answered and spoke (OutboundOpening)
        if self.config.greeting:
            await self.worker.queue_frame(TTSSpeakFrame(self.config.greeting))

    def caller_hung_up(self) -> None:
        """The transport saw the caller leave: nothing the bot decides later changes the reason."""
        if not self.state.ending:
            self.state.ending = True
            self.state.end_reason = "caller_hangup"
            self.state.caller_left = True

    async def _end_if_no_audio(self, timeout: float) -> None:
        try:
            await asyncio.wait_for(self.audio_watch.heard.wait(), timeout)
        except asyncio.TimeoutError:
            if not self.state.ending:
                logger.warning(f"call {self.info.external_id}: no audio from the caller in {timeout:.0f} s; ending it")
                self.state.ending, self.state.end_reason, self.state.status = True, "error", "failed"
                self.state.notes.append(f"no audio from the caller within {timeout:.0f} s")
            await self.worker.cancel(reason="no caller audio")

    async def run(self, *, store: bool = True, on_media_end: Callable[[], None] | None = None):
        """Run the call to its end, then store it (once) and hang up the provider leg if the bot ended it
        (not after a transfer the provider accepted: the caller is on the new leg; a failed one hangs up).

        ``on_media_end`` runs as soon as the media is over, before storing: the admission
        gate frees the call's line there, so a slow database or broker holds no line.
        """
        runner = WorkerRunner(handle_sigint=False)
        await runner.add_workers(self.worker)
        timeout = settings.CALLS_NO_AUDIO_TIMEOUT_SEC
        watchdog = (asyncio.create_task(self._end_if_no_audio(timeout))
                    if self.audio_watch is not None and timeout > 0 else None)
        try:
            await runner.run()
        except Exception:  # noqa: BLE001 - the record is kept whatever happened
            logger.exception("call pipeline failed")
            self.state.end_reason, self.state.status = "error", "failed"
        finally:
            if watchdog is not None:
                watchdog.cancel()
        transferred = self.state.end_reason == "transfer" and self.state.status == "transferred"
        if self.state.ending and self.control.hang_up and not self.state.caller_left and not transferred:
            try:
                await self.control.hang_up()
            except Exception:  # noqa: BLE001
                logger.exception("provider hang-up failed")
        if on_media_end is not None:
            on_media_end()
        self.record = self.recorder.to_record(
            config=self.config, transport=self.info.transport, started_at=self.started_at,
            ended_at=timezone.now(), end_reason=self.state.end_reason, status=self.state.status,
            external_id=self.info.external_id, from_number=self.info.from_number,
            to_number=self.info.to_number, direction=self.info.direction,
        )
        self.record.call_id = self.info.outbound_call
        self.record.variables = dict(self.config.variables)
        self.record.metrics.update({"caller_turns": self.scenario.engine.user_turns, "llm_failures": self.llm.failures,
                                    "transferred_to": self.state.transferred_to, "notes": self.state.notes})
        if self.opening is not None:
            self.record.metrics["opening"] = self.opening.summary()
        if self.machine is not None:
            self.record.metrics["voicemail"] = self.machine.result
        self.record.scenario, self.record.collected_fields = self.scenario.engine.record_fields()
        self.record.metrics["scenario_engine"] = self.scenario.engine.summary()
        self.record.metrics["grounding"] = grounding_metrics(self.grounding.replies)
        if self.scenario.explanations:  # the call page shows the passages each reply used
            self.record.metrics["reply_explanations"] = [stored_explanation(why)
                                                         for why in self.scenario.explanations[-100:]]
        if store:
            self.stored_attempted = True
            self.saved_call = await in_db_thread(save_call_record, self.record)
        return self.saved_call


def answering_machine_watch(config: BotConfig, state: CallState, worker_ref: list, *,
                            answered_by: str = "") -> VoicemailDetector:
    """An outbound call's answering-machine detector: on a machine, the bot's voicemail message after
    the beep (none: it hangs up), and the call ends with status voicemail."""
    detector = VoicemailDetector()

    @detector.event_handler("on_machine")
    async def _machine(_detector, reason):
        state.notes.append(f"answering machine ({reason})")

    @detector.event_handler("on_leave_message")
    async def _leave_message(_detector):
        if state.ending:
            return
        state.ending, state.end_reason, state.status = True, "voicemail", "voicemail"
        message = [TTSSpeakFrame(config.voicemail_message)] if config.voicemail_message else []
        await worker_ref[0].queue_frames([*message, EndWorkerFrame(reason="voicemail")])

    return detector


def build_call(
    config: BotConfig,
    transport,
    info: CallInfo,
    *,
    control: CallControl | None = None,
    tuning: TurnTuning | None = None,
    retrieve: Callable[[str], list[str]] | None = None,
    llm_base_url: str | None = None,
    record_audio: bool = True,
    extra_observers: list | None = None,
    greet_on_start: bool = True,
) -> LiveCall:
    """The pipeline for one call (models come from the process registry; nothing is loaded here)."""
    tuning = tuning or TurnTuning()
    control = control or CallControl()
    state = CallState()

    stt = SharedWhisperSTTService(model_name=config.stt_model, trailing_silence_secs=tuning.stt_trailing_silence_secs,
                                  window_pad_secs=settings.STT_WINDOW_PAD_SECS or None)
    worker_ref: list = []

    async def stt_failed(exc):  # say sorry and end; the record is kept
        if not state.ending:
            state.ending, state.end_reason, state.status = True, "error", "failed"
            state.notes.append(f"stt failed: {exc}")
            await worker_ref[0].queue_frames([TTSSpeakFrame(TECHNICAL_TROUBLE), EndWorkerFrame(reason="stt failed")])

    async def tts_failed(exc):  # nothing can be said any more: end
        if not state.ending:
            state.ending, state.end_reason, state.status = True, "error", "failed"
            state.notes.append(f"tts failed: {exc}")
            await worker_ref[0].queue_frame(EndWorkerFrame(reason="tts failed"))

    stt.on_failure = stt_failed
    vad = SharedSileroVADAnalyzer(params=VADParams(
        confidence=tuning.vad_confidence, start_secs=tuning.vad_start_secs, stop_secs=tuning.vad_stop_secs))
    context = LLMContext()
    aggregators = LLMContextAggregatorPair(
        context,
        user_params=LLMUserAggregatorParams(
            vad_analyzer=vad,
            user_turn_strategies=UserTurnStrategies(
                start=[VADUserTurnStartStrategy(), TranscriptionUserTurnStartStrategy()],
                stop=[PunctuationTurnStopStrategy(user_speech_timeout=tuning.speech_timeout_secs,
                                                  complete_timeout=tuning.complete_turn_secs,
                                                  digits_timeout=tuning.digits_turn_secs,
                                                  unfinished_timeout=tuning.unfinished_turn_secs)],
            ),
            user_turn_stop_timeout=5.0,  # safety net only: a slow transcript must not split the turn
            user_idle_timeout=config.silence_timeout_sec,
        ),
        assistant_params=LLMAssistantAggregatorParams(),
    )
    llm = FallbackLLMService(
        fallback_phrase=config.fallback_phrase or DEFAULT_FALLBACK,
        base_url=llm_base_url or llm_endpoint.base_url(),
        api_key="local",
        settings=FallbackLLMService.Settings(
            model=config.llm_model or llm_endpoint.default_model(),
            system_instruction=system_instruction(config),
            temperature=config.temperature,
            max_tokens=reply_tokens(config),
        ),
    )
    tts = SharedPiperTTSService(voice=config.voice, on_failure=tts_failed)

    async def scenario_ended(reply):  # the engine ended the call (goodbye, transfer, turn limit, silence)
        state.ending, state.end_reason = True, reply.end_reason or "bot_hangup"
        if reply.end_reason == "transfer" and reply.transfer_to:
            state.transferred_to, state.status = reply.transfer_to, "transferred"
            if control.transfer is not None:
                try:
                    await control.transfer(reply.transfer_to)
                except Exception as exc:  # noqa: BLE001 - the call still ends politely
                    logger.exception(f"transfer to {reply.transfer_to} failed")
                    state.status = "completed"
                    state.notes.append(f"transfer failed: {exc}")
                    return TRANSFER_FAILED
        return None

    # The conversation brain (the same engine as text chat) sits between the user
    # aggregator and the LLM: it owns the conversation rules (goodbye, transfer,
    # max_turns, silence), speaks scripted steps itself (no LLM wait) and hands the
    # LLM only the turns it should answer, with their knowledge.
    audio_watch = CallerAudioWatch()
    scenario = ScenarioProcessor(config, on_end=scenario_ended, retrieve=retrieve)
    grounding = GroundingProcessor(scenario)  # no LLM sentence reaches TTS before its facts are checked
    opening = machine = None
    if config.outbound:  # the callee hears nothing before they answered and spoke (or stayed silent)
        machine = answering_machine_watch(config, state, worker_ref, answered_by=info.answered_by)
        # A machine's greeting reads as one (long, no pause) only after machine.long_greeting_secs:
        # after the callee's first words the greeting waits that long for the verdict at most (a
        # person is decided human as soon as they pause, so people never wait that long).
        opening = OutboundOpening(config.greeting, wait_sec=config.outbound_greeting_wait_sec,
                                  verdict=lambda: machine.outcome, verdict_wait_sec=machine.long_greeting_secs + 0.5)
        greet_on_start = False
    processors = [transport.input(), audio_watch, *([machine] if machine else []), stt,
                  *([machine.transcript_tap()] if machine else []), aggregators.user(), *([opening] if opening else []),
                  scenario,
                  KeypadCollector(scenario), llm, grounding, tts, transport.output(), aggregators.assistant()]

    recorder = CallRecorder(input=transport.input(), stt=stt, llm=llm, tts=tts, output=transport.output(),
                            record_audio=record_audio)
    worker = PipelineWorker(
        Pipeline(processors),
        params=PipelineParams(audio_in_sample_rate=16000, audio_out_sample_rate=16000, enable_metrics=False),
        observers=[recorder, *(extra_observers or [])],
        idle_timeout_secs=None,
        enable_rtvi=False,
        enable_turn_tracking=False,
    )
    worker_ref.append(worker)

    if greet_on_start:  # transports whose caller may not be listening yet call LiveCall.greet() themselves
        @worker.event_handler("on_pipeline_started")
        async def _greet(_worker, _frame):
            if config.greeting:
                await worker.queue_frame(TTSSpeakFrame(config.greeting))

    @aggregators.user().event_handler("on_user_turn_idle")
    async def _silence(_aggregator):
        if machine is not None and machine.outcome == "machine":
            return  # an answering machine: nobody to re-prompt (the message follows its beep)
        if not state.ending:  # the engine re-prompts with the question it is waiting on, then says goodbye
            await scenario.on_silence()

    if machine is not None and info.answered_by:
        @worker.event_handler("on_pipeline_started")
        async def _provider_verdict(_worker, _frame):  # the provider's own AMD, where it has one
            if info.answered_by in (MACHINE, MACHINE_AFTER_GREETING):
                await machine.provider_says_machine(message_ready=info.answered_by == MACHINE_AFTER_GREETING)
            elif info.answered_by == HUMAN:
                await machine.provider_says_human()

    return LiveCall(config=config, info=info, worker=worker, context=context, recorder=recorder,
                    state=state, control=control, llm=llm, user_aggregator=aggregators.user(), scenario=scenario,
                    grounding=grounding, audio_watch=audio_watch, opening=opening, machine=machine)
