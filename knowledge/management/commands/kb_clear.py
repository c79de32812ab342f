"""Clear a bot's knowledge."""

import json

from django.core.management.base import BaseCommand

from knowledge.management.commands._bot import bot_by_slug
from knowledge.services import clear_bot_knowledge


class Command(BaseCommand):
    help = "Unlink all documents from a bot; documents no other bot uses are deleted with their chunks."

    def add_arguments(self, parser):
        parser.add_argument("--bot", required=True, help="The bot's slug.")

    def handle(self, *args, bot, **options):
        self.stdout.write(json.dumps(clear_bot_knowledge(bot_by_slug(bot))))
