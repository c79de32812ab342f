"""The text runner: every case is one ``ChatSession`` (the engine, knowledge and LLM of a call).

Relative dates are read against the suite's ``today`` (the engine's clock is set to
noon of that day in the company's time zone), so results are reproducible. A
silence turn is the engine's own silence handling (``on_silence``: re-prompt once,
then goodbye), as a call's idle timer triggers it. Chats are not stored.
"""

from __future__ import annotations

import dataclasses
import time
from datetime import UTC, date, datetime
from datetime import time as clock_time
from zoneinfo import ZoneInfo

from pipelines.config import BotConfig
from pipelines.dialogue.chat import ChatSession, default_llm
from pipelines.dialogue.normalize import today_in
from pipelines.evaluation.runs import CaseRun, TurnRun, booking_outcome


class TextRunner:
    mode = "text"

    def __init__(self, config: BotConfig, today: date | None = None):
        self.config = config
        self.today = today or today_in(config.company_timezone)
        zone = ZoneInfo(config.company_timezone or "UTC")
        noon = datetime.combine(self.today, clock_time(12, 0), tzinfo=zone).astimezone(UTC)
        self.clock = lambda: noon
        self.llm = default_llm(config)

    def prepare(self, texts: list[str]) -> None:
        """Nothing to prepare for text (the voice runner synthesises the turns here)."""

    def run(self, turns: list[str | None], *, scenario: str = "", overrides: dict | None = None) -> CaseRun:
        config = dataclasses.replace(self.config, **overrides) if overrides else self.config
        started = time.monotonic()
        run = CaseRun()
        try:
            session = ChatSession(config, clock=self.clock, llm=self.llm)
            run.greeting = session.start().reply
            for text in turns:
                if text is None:
                    reply = session.engine.on_silence()
                    run.turns.append(TurnRun(None, reply.text, kind=reply.kind or "script"))
                    if reply.end_call:
                        break
                    continue
                turn = session.send(text)
                values = {**(turn.state.get("collected") or {}), **(turn.state.get("values") or {})}
                run.turns.append(TurnRun(text, turn.reply, kind=turn.kind, latency_ms=turn.latency_ms,
                                         values=values))
                if turn.ended:
                    break
            engine = session.engine
            run.end_reason = engine.end_reason or "none"
            run.completed = list(engine.completed)
            if scenario:
                _done, run.fields = booking_outcome(engine, scenario)
        except Exception as exc:  # noqa: BLE001 - one broken case is a result, not the end of the benchmark
            run.error = f"{type(exc).__name__}: {exc}"
        run.wall_ms = int((time.monotonic() - started) * 1000)
        return run

    def close(self) -> None:
        """Nothing to release (the LLM client is the platform's shared one)."""
