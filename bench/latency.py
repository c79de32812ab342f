"""Voice-to-voice latency of live calls with the embedded models; prints JSON.

v2v_ms = end of the caller's speech (found in the WAV) -> first bot audio out,
with its parts (stt_ms, llm_ttfb_ms, tts_ttfb_ms) per bot reply. Two paths:
``sim`` (file-driven transport, 16 kHz, the simulate_call pipeline) and
``twilio`` (the runner in-process, called through the signed voice webhook and a Media Streams client sending 8 kHz mu-law;
v2v measured on the client from the first non-silent bot audio it receives).

    .venv/bin/python bench/latency.py [--path sim|twilio|both] [--turns 21]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

from _calls_common import TURNS, bench_config, llm_url, load_average, stats


async def sim_turns(n_turns: int, url: str) -> list[dict]:
    from pipelines.live.simulate import simulate_call

    replies = []
    while len(replies) < n_turns:
        files = [TURNS[i % len(TURNS)] for i in range(min(len(TURNS), n_turns - len(replies)))]
        call = await simulate_call(bench_config(), files, store=False, llm_base_url=url, record_audio=False)
        replies += call.recorder.reply_metrics()
    return replies[:n_turns]


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
            for path in TURNS:
                if len(replies) >= n_turns:
                    break
                ended = await caller.say(str(path))
                await caller.wait_bot_done(since=ended, timeout=30)
                first = caller.first_bot_audio_after(ended)
                replies.append({"v2v_ms": round((first - ended) * 1000) if first else None})
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


def summarise(replies: list[dict]) -> dict:
    return {key: stats([r.get(key) for r in replies])
            for key in ("v2v_ms", "stt_ms", "llm_ttfb_ms", "tts_ttfb_ms", "server_v2v_ms") if any(key in r for r in replies)}


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--path", choices=["sim", "twilio", "both"], default="both")
    parser.add_argument("--turns", type=int, default=21)
    args = parser.parse_args()

    from pipelines.model_registry import registry

    registry.preload()
    url, proc = llm_url()
    result = {"turns_per_path": args.turns, "llm": url, "load_average_before": load_average()}
    try:
        for path in (["sim", "twilio"] if args.path == "both" else [args.path]):
            started = time.monotonic()
            replies = asyncio.run(sim_turns(args.turns, url) if path == "sim" else twilio_turns(args.turns, url))
            result[path] = {**summarise(replies), "wall_s": round(time.monotonic() - started, 1), "replies": replies}
    finally:
        if proc:
            proc.terminate()
    result["load_average_after"] = load_average()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
