"""Voice-to-voice latency of live calls with the embedded models; prints JSON.

v2v_ms = end of the caller's speech (found in the WAV) -> first bot audio out,
with its parts (stt_ms, llm_ttfb_ms, tts_ttfb_ms) per bot reply. Two paths:
``sim`` (file-driven transport, 16 kHz, the simulate_call pipeline) and
``twilio`` (the runner in-process, called through the signed voice webhook and a Media Streams client sending 8 kHz mu-law;
v2v measured on the client from the first non-silent bot audio it receives), and
``sip`` (the same runner with its SIP endpoint, PJSIP, as a listener, called by SIPp
with G.711 mu-law RTP to and from this process: ``bench/_sip_caller.py``; v2v measured
on the caller from the end of its speech to the first non-silent RTP packet of the bot).
Twilio and SIP calls use the same bot, the same TURNS (three per call, after the
greeting) and the same LLM; ``sip_vs_twilio`` is the ratio of their client-side v2v.

    .venv/bin/python bench/latency.py [--path sim|twilio|sip|both|phone|all] [--turns 21]

``both``: sim and twilio (as before); ``phone``: twilio and sip; ``all``: the three.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

from _calls_common import TURNS, bench_config, llm_url, load_average, stats
from _sip_caller import json_stdout


async def sim_turns(n_turns: int, url: str) -> list[dict]:
    from pipelines.live.simulate import simulate_call

    replies = []
    while len(replies) < n_turns:
        files = [TURNS[i % len(TURNS)] for i in range(min(len(TURNS), n_turns - len(replies)))]
        call = await simulate_call(bench_config(), files, store=False, llm_base_url=url, record_audio=False)
        replies += call.recorder.reply_metrics()
    return replies[:n_turns]


async def speak_turns(caller, replies: list[dict], n_turns: int) -> None:
    """Say each of TURNS (until ``n_turns`` replies), timing the bot's answer from the caller's side."""
    for path in TURNS:
        if len(replies) >= n_turns:
            break
        ended = await caller.say(str(path))
        await caller.wait_bot_done(since=ended, timeout=30)
        first = caller.first_bot_audio_after(ended)
        replies.append({"v2v_ms": round((first - ended) * 1000) if first else None})


async def twilio_turns(n_turns: int, url: str) -> list[dict]:
    import uvicorn
    from django.conf import settings

    from pipelines.live.runner import CallHub, create_app
    from pipelines.live.twilio_caller import TwilioCaller

    hub = CallHub()
    hub.resolve_number = lambda number: bench_config()
    hub.store_calls = False
    hub.llm_base_url = url
    server = uvicorn.Server(uvicorn.Config(create_app(hub, preload=False), host="127.0.0.1", port=0,
                                           log_level="warning", ws="websockets"))
    serve = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    # Calls come in as Twilio's do: the signed voice webhook, then its stream with the single-use token.
    settings.RUNNER_PUBLIC_URL, settings.TWILIO_AUTH_TOKEN = base, "bench-auth-token"
    replies = []
    try:
        while len(replies) < n_turns:
            caller = await TwilioCaller.dial(base, to="+15550000000", auth_token=settings.TWILIO_AUTH_TOKEN)
            await caller.wait_bot_done()
            await speak_turns(caller, replies, n_turns)
            await caller.hang_up()
            await asyncio.sleep(0.5)
            # The server-side parts of the same turns, from the call's recorder.
            server_side = hub.finished[-1].recorder.reply_metrics() if hub.finished else []
            for reply, parts in zip(replies[-len(server_side):], server_side):
                reply.update({k: v for k, v in parts.items() if k != "v2v_ms"}, server_v2v_ms=parts["v2v_ms"])
    finally:
        server.should_exit = True
        await serve
    return replies[:n_turns]


SIP_CALLS: list[dict] = []  # per SIP call: how it ended and its RTP arrival gaps (bench/_sip_caller.py)


async def sip_turns(n_turns: int, url: str) -> list[dict]:
    from _sip_caller import SipCaller, SippSession, finished_call, start_sip_runner

    from pipelines.live.runner import CallHub

    hub = CallHub()
    hub.resolve_number = lambda number: bench_config()
    hub.store_calls = False
    hub.llm_base_url = url
    server, serve, target = await start_sip_runner(hub)
    session = await SippSession(target, "+15550000000").start()
    replies = []
    try:
        while len(replies) < n_turns:
            caller = await SipCaller.dial(session)
            if not caller.answered:
                raise RuntimeError(f"SIP call {caller.call_id} was not answered (SIPp log: {session.workdir})")
            await caller.wait_bot_done()  # the greeting
            first_of_call = len(replies)
            await speak_turns(caller, replies, n_turns)
            await caller.hang_up()
            for _ in range(50):  # the runner finishes the call after the BYE
                if (call := finished_call(hub, caller.call_id)) is not None:
                    break
                await asyncio.sleep(0.1)
            server_side = call.recorder.reply_metrics() if call is not None else []
            mine = replies[first_of_call:]
            for reply, parts in zip(mine[-len(server_side):] if server_side else [], server_side):
                reply.update({k: v for k, v in parts.items() if k != "v2v_ms"}, server_v2v_ms=parts["v2v_ms"])
            report = caller.rtp_report()
            SIP_CALLS.append({"call_id": caller.call_id, "ended_cleanly": caller.ended_cleanly,
                              "end_reason": call.state.end_reason if call is not None else None,
                              **{k: v for k, v in report.items() if k != "replies"}})
    finally:
        sipp = await session.close()
        server.should_exit = True
        await serve
    if sipp.get("failed_call"):
        raise RuntimeError(f"SIPp reports failed calls: {sipp} (logs: {session.workdir})")
    return replies[:n_turns]


def ratio(a: dict, b: dict, key: str) -> float | None:
    return round(a[key] / b[key], 2) if a.get(key) and b.get(key) else None


def summarise(replies: list[dict]) -> dict:
    return {key: stats([r.get(key) for r in replies])
            for key in ("v2v_ms", "stt_ms", "llm_ttfb_ms", "tts_ttfb_ms", "server_v2v_ms") if any(key in r for r in replies)}


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--path", choices=["sim", "twilio", "sip", "both", "phone", "all"], default="both")
    parser.add_argument("--turns", type=int, default=21)
    args = parser.parse_args()
    out = json_stdout()  # PJSIP's first log lines go to fd 1

    from pipelines.model_registry import registry

    registry.preload()
    url, proc = llm_url()
    result = {"turns_per_path": args.turns, "llm": url, "load_average_before": load_average()}
    try:
        paths = {"both": ["sim", "twilio"], "phone": ["twilio", "sip"], "all": ["sim", "twilio", "sip"]}
        for path in paths.get(args.path, [args.path]):
            started = time.monotonic()
            turns = {"sim": sim_turns, "twilio": twilio_turns, "sip": sip_turns}[path]
            replies = asyncio.run(turns(args.turns, url))
            result[path] = {**summarise(replies), "wall_s": round(time.monotonic() - started, 1), "replies": replies}
            if path == "sip":
                result[path]["calls"] = SIP_CALLS
    finally:
        if proc:
            proc.terminate()
    if "sip" in result and "twilio" in result:
        sip, twilio = result["sip"]["v2v_ms"], result["twilio"]["v2v_ms"]
        result["sip_vs_twilio"] = {"v2v_median_ratio": ratio(sip, twilio, "median"),
                                   "v2v_p95_ratio": ratio(sip, twilio, "p95"),
                                   "v2v_median_diff_ms": sip["median"] - twilio["median"] if sip.get("n") and twilio.get("n") else None}
    result["load_average_after"] = load_average()
    print(json.dumps(result), file=out, flush=True)


if __name__ == "__main__":
    main()
