"""Call analytics computed from the stored turns: duration, turns, interruptions, latency."""

from __future__ import annotations

import math
from collections.abc import Iterable

from voicebot.models import Call, CallTurn


def percentile(values: Iterable[float], fraction: float) -> float | None:
    """Linear-interpolated percentile (``fraction`` 0-1) of ``values``; None when empty."""
    ordered = sorted(values)
    if not ordered:
        return None
    position = (len(ordered) - 1) * fraction
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def latency_stats(latencies: Iterable[float]) -> dict:
    values = [float(v) for v in latencies if v is not None]
    median, p95 = percentile(values, 0.5), percentile(values, 0.95)
    return {
        "latency_samples": len(values),
        "latency_median_ms": round(median) if median is not None else None,
        "latency_p95_ms": round(p95) if p95 is not None else None,
    }


def call_analytics(call: Call, turns: list[CallTurn]) -> dict:
    """The figures stored in ``Call.analytics``; a pure function of the call and its turns."""
    caller_turns = [t for t in turns if t.role == CallTurn.Role.CALLER]
    bot_turns = [t for t in turns if t.role == CallTurn.Role.BOT]
    latencies = [t.latency_ms for t in bot_turns if t.latency_ms is not None]
    if not latencies:  # the recorder may keep latencies only in metrics
        latencies = [v for v in (call.metrics or {}).get("latencies_ms", []) if isinstance(v, (int, float))]
    duration = call.duration_sec
    return {
        "duration_sec": round(duration, 1) if duration is not None else None,
        "turns": len(turns),
        "caller_turns": len(caller_turns),
        "bot_turns": len(bot_turns),
        "interruptions": sum(1 for t in turns if t.interrupted),
        **latency_stats(latencies),
        "answered": bool(caller_turns),
    }
