from django.core.management.base import CommandError

from voicebot.models import Bot


def bot_by_slug(slug: str) -> Bot:
    bot = Bot.objects.select_related("company").filter(slug=slug).first()
    if bot is None:
        raise CommandError(f"No bot with slug {slug!r}.")
    return bot
