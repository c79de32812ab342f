"""Run one simulated call (file-driven caller) through the real pipeline and models."""

from __future__ import annotations

from pathlib import Path

from pipelines.config import BotConfig
from pipelines.live.factory import CallInfo, LiveCall, TurnTuning, build_call
from pipelines.live.sim_transport import SimCaller, SimTransport


async def simulate_call(config: BotConfig, audio_files: list[str | Path], *, store: bool = True,
                        tuning: TurnTuning | None = None, llm_base_url: str | None = None,
                        record_audio: bool = True) -> LiveCall:
    caller = SimCaller(audio_files)
    transport = SimTransport(caller)
    call = build_call(config, transport, CallInfo(transport="sim"), tuning=tuning,
                      llm_base_url=llm_base_url, record_audio=record_audio)
    caller.on_speech_end = call.recorder.mark_caller_speech_end
    caller.on_hangup = call.caller_hung_up
    await call.run(store=store)
    return call


def call_report(call: LiveCall) -> dict:
    """The JSON simulate_call prints: call id, turns and each bot reply's timings."""
    turns = []
    for turn in call.recorder.turns:
        text = turn.text or turn.planned
        if not text:
            continue
        item = {"role": turn.role, "text": text, "interrupted": turn.interrupted}
        if turn.role == "bot" and turn.timing is not None and turn.timing.speech_end is not None:
            item.update(turn.timing.metrics())
        turns.append(item)
    return {
        "call_id": getattr(call.saved_call, "pk", None),
        "external_id": call.record.external_id if call.record else None,
        "spooled": call.record is not None and call.saved_call is None and call.stored_attempted,
        "end_reason": call.state.end_reason,
        "turns": turns,
    }
