"""N simultaneous SIP calls against the runner's SIP endpoint (PJSIP); prints JSON.

The runner runs in this process with its SIP endpoint as a listener (as ``runbots``
has it), the embedded models and LLM, and the benchmark bot. One SIPp process
(``bench/sip/bench_call.xml``, driven by ``bench/_sip_caller.py``) places N calls at
once for each level; each call's media is an RTP endpoint of this process (PCMU,
20 ms, one port per call) that speaks the same caller turns (TURNS) after the
greeting, in lock-step on every call (the worst case for the shared models, as
``bench/concurrency.py --stagger 0``), then has SIPp send BYE.

Reported per level: calls placed, answered (200 and media), completed (BYE answered
200 and the call finished in ``hub.finished`` with end reason ``caller_hangup``),
lost (the rest, with why), the bot's RTP arrival gaps (``max_rtp_gap_ms``: the
largest gap between consecutive packets over each whole call; ``max_rtp_gap_ms_in_replies``:
the largest from the first to the last non-silent packet of a bot reply), v2v as heard
by the callers, the process's CPU use and the load average. Target: no gap over
100 ms at 4 calls.

    .venv/bin/python bench/sip_concurrency.py [--calls 4,8] [--turns-per-call 3] [--stagger 0]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

import psutil
from _calls_common import TURNS, bench_config, llm_url, load_average, stats
from _sip_caller import SipCaller, SippSession, finished_call, json_stdout, start_sip_runner

GAP_TARGET_MS = 100


async def one_call(session: SippSession, turns: int, delay: float) -> tuple[SipCaller, list[dict]]:
    await asyncio.sleep(delay)
    caller = await SipCaller.dial(session)
    replies = []
    if caller.answered:
        await caller.wait_bot_done()  # the greeting
        for i in range(turns):
            ended = await caller.say(str(TURNS[i % len(TURNS)]))
            await caller.wait_bot_done(since=ended, timeout=30)
            first = caller.first_bot_audio_after(ended)
            replies.append({"v2v_ms": round((first - ended) * 1000) if first else None})
    await caller.hang_up()
    return caller, replies


async def run_level(hub, agent, session: SippSession, n: int, turns: int, stagger: float) -> dict:
    proc = psutil.Process()
    load_before = load_average()
    answered_before, busy_before = agent.status()["answered"], agent.status()["busy"]
    cpu0, t0 = proc.cpu_times(), time.monotonic()
    results = await asyncio.gather(*(one_call(session, turns, i * stagger) for i in range(n)))
    wall = time.monotonic() - t0
    cpu1 = proc.cpu_times()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and any(finished_call(hub, c.call_id) is None for c, _ in results):
        await asyncio.sleep(0.1)

    calls, lost = [], []
    for caller, replies in results:
        live = finished_call(hub, caller.call_id)
        report = caller.rtp_report()
        entry = {"call_id": caller.call_id, "answered": caller.answered, "refused_with": caller.refused_with, "ended_cleanly": caller.ended_cleanly,
                 "finished": live is not None, "end_reason": live.state.end_reason if live else None,
                 "status": live.state.status if live else None,
                 "record_built": bool(live is not None and live.record is not None),
                 "v2v_ms": [r["v2v_ms"] for r in replies], **report}
        why = [reason for reason, bad in (
            (f"refused {caller.refused_with}" if caller.refused_with else "not answered", not caller.answered), ("BYE not answered 200", not caller.ended_cleanly),
            ("not in hub.finished", live is None),
            ("end reason not caller_hangup", live is not None and live.state.end_reason != "caller_hangup"),
            ("no call record", live is not None and live.record is None),
            ("replies missing", caller.answered and any(r["v2v_ms"] is None for r in replies))) if bad]
        if why:
            lost.append({"call_id": caller.call_id, "why": why})
        calls.append(entry)

    def most(key):
        values = [c[key] for c in calls if c.get(key) is not None]
        return max(values) if values else None

    v2v = [v for c in calls for v in c["v2v_ms"]]
    level = {
        "calls": n, "placed": n, "answered": sum(c["answered"] for c in calls),
        "completed": n - len(lost), "lost": len(lost), "lost_calls": lost,
        "runner_answered": agent.status()["answered"] - answered_before,
        "runner_busy_refusals": agent.status()["busy"] - busy_before,  # the admission gate's 486s
        "refused_by_status": {str(code): sum(c["refused_with"] == code for c in calls)
                              for code in sorted({c["refused_with"] for c in calls if c["refused_with"]})},
        "lines_in_use_after": hub.gate.active, "sip_active_calls_after": agent.status()["active_calls"],
        "max_rtp_gap_ms": most("max_gap_ms_call"), "max_rtp_gap_ms_in_replies": most("max_gap_ms_in_replies"),
        "p99_rtp_gap_ms": most("p99_gap_ms_call"),
        "rtp_gaps_over_100ms": sum(c["gaps_over_100ms"] for c in calls),
        "rtp_gaps_over_40ms": sum(c["gaps_over_40ms"] for c in calls),
        "rtp_missing_seq": sum(c["missing_seq"] for c in calls),
        "longest_silent_run_in_reply_ms": max((r["longest_silent_run_ms"] for c in calls for r in c["replies"]), default=None),
        "caller_send_lateness_max_ms": most("caller_send_lateness_max_ms"),  # this process's loop stalls...
        "rtp_read_delay_max_ms": most("read_delay_max_ms"),  # ...which the kernel arrival stamps leave out
        "v2v_ms": stats(v2v), "wall_s": round(wall, 1),
        "cpu_cores_busy": round((cpu1.user + cpu1.system - cpu0.user - cpu0.system) / wall, 2),
        "load_average_before": load_before, "load_average_after": load_average(),
        "per_call": [{k: v for k, v in c.items() if k not in ("replies",)} for c in calls],
    }
    level["gap_target_met"] = level["max_rtp_gap_ms"] is not None and level["max_rtp_gap_ms"] <= GAP_TARGET_MS
    return level


async def run(levels: list[int], turns: int, stagger: float, url: str) -> dict:
    from pipelines.live.runner import CallHub

    hub = CallHub()
    hub.resolve_number = lambda number: bench_config()
    hub.store_calls = False
    hub.llm_base_url = url
    server, serve, target = await start_sip_runner(hub)
    agent = next(listener for listener in hub.listeners if listener.name == "sip")
    session = await SippSession(target, "+15550000000").start()
    out = {"sip_endpoint": target, "levels": []}
    try:
        await run_level(hub, agent, session, 1, 1, 0.0)  # warm-up: first inferences, PJSIP's first call
        for n in levels:
            await asyncio.sleep(2.0)  # let the load of the previous level settle
            out["levels"].append(await run_level(hub, agent, session, n, turns, stagger))
    finally:
        out["sipp"] = await session.close()
        out["sipp_logs"] = str(session.workdir)
        out["sip_endpoint_status"] = agent.status()
        server.should_exit = True
        await serve
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", default="4,8")
    parser.add_argument("--turns-per-call", type=int, default=3)
    parser.add_argument("--stagger", type=float, default=0.0,
                        help="start call i after i*STAGGER s (0: every caller speaks in lock-step, the worst case)")
    args = parser.parse_args()
    out = json_stdout()  # PJSIP's first log lines go to fd 1

    from pipelines.model_registry import registry

    registry.preload()
    url, llm_proc = llm_url()
    result = {"llm": url, "turns_per_call": args.turns_per_call, "stagger_s": args.stagger,
              "gap_target_ms": GAP_TARGET_MS, "load_average_before": load_average()}
    try:
        result.update(asyncio.run(run([int(x) for x in args.calls.split(",")], args.turns_per_call, args.stagger, url)))
    finally:
        if llm_proc:
            llm_proc.terminate()
    result["summary"] = {str(lv["calls"]): {k: lv[k] for k in (
        "placed", "answered", "completed", "lost", "max_rtp_gap_ms", "max_rtp_gap_ms_in_replies", "gap_target_met")}
        | {"v2v_median_ms": lv["v2v_ms"].get("median"), "v2v_p95_ms": lv["v2v_ms"].get("p95"),
           "load_average_after": lv["load_average_after"]} for lv in result["levels"]}
    result["load_average_after"] = load_average()
    print(json.dumps(result), file=out, flush=True)


if __name__ == "__main__":
    main()
