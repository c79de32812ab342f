"""Outbound calls through the fake Twilio cloud (pipelines/live/fake_twilio.py); prints JSON.

The runner runs in-process with the embedded models, on the dev database (a throw-away
company, deleted at the end). Each call is placed as the API places one (``request_call``,
the dial task run at once), rung and answered by the fake, and measured on the callee's side:

- ``greeting_after_hello_ms``: the end of the callee's "Hello, this is Sam speaking." to the
  first non-silent audio of the bot's greeting (the greeting waits for the person's first
  pause: the answering-machine verdict);
- ``message_after_beep_ms``: the end of a voicemail's beep to the first audio of the bot's
  voicemail message;
- ``place_to_answer_ms``: ``request_call`` to the runner's answer (dial task, REST, fake ring
  of 0.3 s, the signed answer-URL fetch), a measure of the platform's own overhead.

    .venv/bin/python bench/outbound.py [--calls 5] [--voicemails 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid

from _calls_common import llm_url, load_average, stats


async def run(n_calls: int, n_voicemails: int, url: str) -> dict:
    import uvicorn
    from asgiref.sync import sync_to_async
    from django.conf import settings

    from pipelines.live.fake_twilio import Answers, FakeTwilioCloud, HangUp, Say, Voicemail, WaitBot
    from pipelines.live.runner import CallHub, create_app
    from pipelines.management.commands.fake_callees import callee_wavs
    from pipelines.model_registry import registry
    from telephony.tasks import dial_call
    from voicebot import outbound_calls
    from voicebot.models import Bot, Company, PhoneNumber

    registry.preload()
    lines = callee_wavs(settings.DATA_DIR / "fake_callees")
    hub = CallHub()
    hub.llm_base_url = url
    server = uvicorn.Server(uvicorn.Config(create_app(hub, preload=False), host="127.0.0.1", port=0,
                                           log_level="warning", ws="websockets"))
    serve = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.05)
    base = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    token = uuid.uuid4().hex
    cloud = FakeTwilioCloud("ACbench", token)
    settings.RUNNER_PUBLIC_URL, settings.TWILIO_AUTH_TOKEN, settings.TWILIO_ACCOUNT_SID = base, token, "ACbench"
    settings.TWILIO_API_BASE_URL = cloud.start()
    outbound_calls.queue_dial = dial_call  # the worker's job, done at once

    def make_bot() -> Bot:
        company = Company.objects.create(name=f"Bench outbound {token[:6]}", slug=f"bench-out-{token[:6]}",
                                         timezone="UTC", country="US")
        bot = Bot.objects.create(company=company, name="Bench caller", slug=f"bench-caller-{token[:6]}",
                                 greeting="Hi {{name}}, this is Bench Dental about your cleaning tomorrow.",
                                 voicemail_message="Hi {{name}}, Bench Dental here. Please call us back.",
                                 system_prompt="You call patients of Bench Dental to confirm appointments.")
        PhoneNumber.objects.create(company=company, bot=bot, number="+12125550100", provider="twilio")
        return bot

    bot = await sync_to_async(make_bot)()
    figures: dict[str, list[float]] = {"greeting_after_hello_ms": [], "message_after_beep_ms": [],
                                       "place_to_answer_ms": []}
    try:
        plan = [("person", f"+1212555{1000 + i:04d}") for i in range(n_calls)]
        plan += [("voicemail", f"+1212555{2000 + i:04d}") for i in range(n_voicemails)]
        for kind, number in plan:
            if kind == "person":
                cloud.callee(number, Answers(script=[Say(str(lines["hello"])), WaitBot(), HangUp()]))
            else:
                cloud.callee(number, Voicemail(str(lines["voicemail"])))
            placed = time.monotonic()
            await sync_to_async(outbound_calls.request_call)(bot=bot, to=number, variables={"name": "Sam"})
            fake = await asyncio.to_thread(lambda: cloud.wait(cloud.wait_for_call(to=number).sid, 90))
            if fake.answered_at:
                figures["place_to_answer_ms"].append((fake.answered_at - placed) * 1000)
            if kind == "person" and fake.say_ends and fake.first_bot_audio:
                figures["greeting_after_hello_ms"].append((fake.first_bot_audio - fake.say_ends[0]) * 1000)
            if kind == "voicemail" and fake.beep_ended_at and fake.first_bot_audio:
                figures["message_after_beep_ms"].append((fake.first_bot_audio - fake.beep_ended_at) * 1000)
            deadline = time.monotonic() + 30  # the call is stored (its line freed) before the next one starts
            while (hub.active or hub.gate.active) and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
    finally:
        cloud.close()
        server.should_exit = True
        await serve
        await sync_to_async(bot.company.delete)()
    return {name: stats(values) for name, values in figures.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=5)
    parser.add_argument("--voicemails", type=int, default=3)
    args = parser.parse_args()
    url, llm = llm_url()
    try:
        figures = asyncio.run(run(args.calls, args.voicemails, url))
    finally:
        if llm is not None:
            llm.terminate()
    print(json.dumps({"bench": "outbound", **figures, "load_average": load_average()}, indent=2))


if __name__ == "__main__":
    main()
