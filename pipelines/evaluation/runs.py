"""What running one case gives, whichever the runner (text or voice)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class TurnRun:
    caller: str | None  # the scripted words; None: a silence
    bot: str = ""
    heard: str | None = None  # voice: what Whisper heard
    kind: str = ""
    latency_ms: int | None = None  # text: reply time; voice: v2v (caller's speech end -> bot audio)
    values: dict | None = None  # text: the scenario's values after this turn (what the engine understood)


@dataclass
class CaseRun:
    greeting: str = ""
    turns: list[TurnRun] = field(default_factory=list)
    end_reason: str = "none"
    completed: list[str] = field(default_factory=list)  # scenarios completed
    fields: dict = field(default_factory=dict)  # the fields of the booking scenario (completed or not)
    error: str = ""
    wall_ms: int = 0

    @property
    def replies(self) -> list[str]:
        return [t.bot for t in self.turns if t.bot]

    @property
    def caller_words(self) -> list[str]:
        words = []
        for t in self.turns:
            words += [w for w in (t.caller, t.heard) if w]
        return words

    def as_dict(self) -> dict:
        data = asdict(self)
        data["turns"] = [{k: v for k, v in t.items() if v is not None or k == "caller"} for t in data["turns"]]
        return data


def spoken_values(values: dict) -> list[str]:
    """Collected values as the engine reads them back ("2026-03-11" -> "Wednesday, March 11"): the
    caller's words as understood, so a read-back of them is not counted as an invented fact."""
    from datetime import date, time

    from pipelines.dialogue.normalize import speak_date, speak_time

    out = []
    for value in (values or {}).values():
        text = "" if value is None else str(value)
        try:
            out.append(speak_date(date.fromisoformat(text)))
            continue
        except ValueError:
            pass
        try:
            if len(text) == 5 and text[2] == ":":
                out.append(speak_time(time.fromisoformat(text)))
                continue
        except ValueError:
            pass
        out.append(text)
    return [t for t in out if t]


def booking_outcome(engine, scenario: str) -> tuple[bool, dict]:
    """(completed, fields) of ``scenario`` in a dialogue engine's conversation."""
    if engine is None:
        return False, {}
    completed = scenario in engine.completed
    if completed:
        for event in reversed(engine.events):
            if event.get("scenario") == scenario and "fields" in event:
                return True, dict(event["fields"])
        return True, dict(engine.collected)
    _last, fields = engine.record_fields()
    return False, dict(fields)
