"""Chat with a bot in the terminal: `python manage.py chat --bot SLUG`.

Reads the caller's lines from stdin (so a test or a script can pipe them in),
prints the bot's replies, and stores the conversation like a call with
transport ``chat`` when stdin ends or the bot ends the conversation.
"""

from __future__ import annotations

import json
import sys

from django.core.management.base import BaseCommand, CommandError

from pipelines.config import BotConfig, BotNotFound
from pipelines.dialogue.chat import ChatSession


class Command(BaseCommand):
    help = "Chat with a bot by text (same scenarios, knowledge and LLM as its calls). One line per turn."

    def add_arguments(self, parser):
        parser.add_argument("--bot", required=True, help="The bot's slug.")
        parser.add_argument("--state", action="store_true", help="Print the engine's state after each reply.")
        parser.add_argument("--json", action="store_true", help="One JSON object per reply (for scripts).")
        parser.add_argument("--no-store", action="store_true", help="Do not store the chat as a call.")

    def handle(self, *args, bot, state, json: bool, no_store, **options):
        try:
            config = BotConfig.for_slug(bot)
        except BotNotFound as exc:
            raise CommandError(f"{exc}. Known bots: `manage.py shell -c \"from voicebot.models import Bot; "
                               f"print(list(Bot.objects.values_list('slug', flat=True)))\"`") from None
        chat = ChatSession(config)
        interactive = sys.stdin.isatty()
        greeting = chat.start()
        self._show(greeting, state, json)
        ended = False
        while not ended:
            if interactive:
                self.stdout.write("you> ", ending="")
                self.stdout.flush()
            line = sys.stdin.readline()
            if not line:
                break
            text = line.strip()
            if not text:
                continue
            turn = chat.send(text)
            self._show(turn, state, json)
            ended = turn.ended
        if not no_store:
            call = chat.end()
            if call is not None:
                message = f"stored as call {call.pk} (transport chat)"
                self.stderr.write(message)

    def _show(self, turn, show_state: bool, as_json: bool):
        if as_json:
            self.stdout.write(json_dumps({"reply": turn.reply, "kind": turn.kind, "state": turn.state}))
            return
        if turn.reply:
            self.stdout.write(f"bot> {turn.reply}")
        if show_state:
            s = turn.state
            self.stdout.write(f"     [scenario={s['scenario'] or '-'} field={s['field'] or s['awaiting'] or '-'} "
                              f"values={s['values']}]")


def json_dumps(data) -> str:
    return json.dumps(data, ensure_ascii=False, default=str)
