"""N simultaneous simulated calls in one runner process (shared models); prints JSON.

For N = 1, 2, 4, ... each call plays the same caller turns through the
simulate_call pipeline at real-time pace. Reported per N: p95/median v2v_ms
over all replies, the process's CPU use (cores busy) and resident memory, and
the resident memory each added call costs over the idle, warmed-up process
(per level, and as the least-squares slope of peak RSS over all levels). The
LLM server is a separate process and is not counted in RSS.

    .venv/bin/python bench/concurrency.py [--calls 1,2,4,8] [--turns-per-call 2] [--stagger 0]

With the default ``--stagger 0`` all N callers play the same WAVs in lock-step,
so every turn ends at the same instant on every call: the worst case for the
shared models. ``--stagger 1.3`` spreads the call starts over a turn.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

import psutil
from _calls_common import TURNS, bench_config, llm_url, load_average, stats


async def run_level(n: int, turns: int, url: str, stagger: float = 0.0) -> dict:
    from pipelines.live.simulate import simulate_call

    proc = psutil.Process()
    peak = {"rss": proc.memory_info().rss}

    async def sample():
        while True:
            peak["rss"] = max(peak["rss"], proc.memory_info().rss)
            await asyncio.sleep(0.2)

    sampler = asyncio.create_task(sample())
    cpu0, t0 = proc.cpu_times(), time.monotonic()
    files = [TURNS[i % len(TURNS)] for i in range(turns)]
    async def call(i: int):
        await asyncio.sleep(i * stagger)
        return await simulate_call(bench_config(), files, store=False, llm_base_url=url)

    calls = await asyncio.gather(*(call(i) for i in range(n)))
    wall = time.monotonic() - t0
    cpu1 = proc.cpu_times()
    sampler.cancel()
    replies = [r for call in calls for r in call.recorder.reply_metrics()]
    return {
        "calls": n, "replies": len(replies), "wall_s": round(wall, 1),
        "v2v_ms": stats([r["v2v_ms"] for r in replies]),
        "stt_ms": stats([r["stt_ms"] for r in replies]),
        "llm_ttfb_ms": stats([r["llm_ttfb_ms"] for r in replies]),
        "tts_ttfb_ms": stats([r["tts_ttfb_ms"] for r in replies]),
        "cpu_cores_busy": round((cpu1.user + cpu1.system - cpu0.user - cpu0.system) / wall, 2),
        "peak_rss_mb": round(peak["rss"] / 2**20, 1),
    }


def rss_slope(levels: list[dict]) -> float | None:
    """Least-squares MB of peak RSS per call over all levels: the marginal cost of a call.

    The step between two levels alone swings with what glibc happens to keep of
    freed inference buffers; the slope over every level is steadier.
    """
    if len(levels) < 2:
        return None
    xs, ys = [lv["calls"] for lv in levels], [lv["peak_rss_mb"] for lv in levels]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    return round(sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs), 1)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", default="1,2,4,8")
    parser.add_argument("--turns-per-call", type=int, default=2)
    parser.add_argument("--stagger", type=float, default=0.0,
                        help="start call i after i*STAGGER s (0: every caller speaks in lock-step, the worst case)")
    args = parser.parse_args()

    from pipelines.model_registry import registry

    registry.preload()
    url, llm_proc = llm_url()
    import gc

    # Warm-up first: what a process allocates once is not a cost of each call. That is
    # Pipecat's lazy imports and the inference buffers of each Whisper and Piper worker,
    # sized by the longest utterance and reply they have seen; there are as many workers
    # as cores however many calls run (model_registry), so the warm-up runs that many
    # calls at once, with the same turns as the levels.
    from pipelines.model_registry import TTS_CONCURRENCY

    asyncio.run(run_level(TTS_CONCURRENCY, args.turns_per_call, url))
    gc.collect()
    base_rss = psutil.Process().memory_info().rss
    result = {"llm": url, "stagger_s": args.stagger, "baseline_rss_mb": round(base_rss / 2**20, 1), "load_average_before": load_average(), "levels": []}
    try:
        for n in [int(x) for x in args.calls.split(",")]:
            level = asyncio.run(run_level(n, args.turns_per_call, url, args.stagger))
            level["rss_per_call_over_idle_mb"] = round((level["peak_rss_mb"] - result["baseline_rss_mb"]) / n, 1)
            if result["levels"]:  # the marginal cost of the calls added since the previous level
                prev = result["levels"][-1]
                level["rss_per_added_call_mb"] = round(
                    (level["peak_rss_mb"] - prev["peak_rss_mb"]) / (n - prev["calls"]), 1)
            result["levels"].append(level)
    finally:
        if llm_proc:
            llm_proc.terminate()
    result["rss_slope_mb_per_call"] = rss_slope(result["levels"])
    result["load_average_after"] = load_average()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
