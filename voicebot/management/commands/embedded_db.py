"""Start, stop or locate the embedded PostgreSQL used when DATABASE_URL is unset."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from voicebot import embedded_db


class Command(BaseCommand):
    help = "Manage the embedded PostgreSQL (with pgvector): status, start or stop."

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["status", "start", "stop"])

    def handle(self, action, **options):
        if not settings.EMBEDDED_DATABASE:
            raise CommandError("DATABASE_URL is set: this install uses an external PostgreSQL.")
        pgdata = settings.DATA_DIR / "postgres"
        if action == "stop":
            stopped = embedded_db.stop(pgdata)
            self.stdout.write("stopped" if stopped else "not running")
        else:
            # Loading settings already started it; report where it listens.
            self.stdout.write(f"running: socket {settings.DATABASES['default']['HOST']}, data {pgdata}")
