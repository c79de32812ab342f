"""Upload files for a bot, queue them through Celery and wait: one JSON line per file."""

import json
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from knowledge.management.commands._bot import bot_by_slug
from knowledge.models import KnowledgeDocument
from knowledge.services import upload_document

FINAL = {KnowledgeDocument.Status.READY, KnowledgeDocument.Status.FAILED}


class Command(BaseCommand):
    help = "Ingest files into a bot's knowledge (through the Celery worker) and print JSON per document."

    def add_arguments(self, parser):
        parser.add_argument("--bot", required=True, help="The bot's slug.")
        parser.add_argument("files", nargs="+")
        parser.add_argument("--timeout", type=float, default=600, help="Seconds to wait for the worker.")

    def handle(self, *args, bot, files, timeout, **options):
        bot = bot_by_slug(bot)
        results = []
        for name in files:
            path = Path(name)
            if not path.is_file():
                raise CommandError(f"{name}: no such file.")
            results.append(upload_document(bot.company, path.name, path.read_bytes(), [bot]))
        deadline = time.monotonic() + timeout
        pending = {r.document.pk for r in results if r.document is not None and r.outcome in ("queued", "replaced")}
        while pending and time.monotonic() < deadline:
            done = KnowledgeDocument.objects.filter(pk__in=pending, status__in=FINAL).values_list("pk", flat=True)
            pending -= set(done)
            if pending:
                time.sleep(0.2)
        failed = False
        for result in results:
            line = {"file": result.name, "outcome": result.outcome}
            if result.document is None:
                line.update(status="rejected", chunks=0, error=result.message)
            else:
                document = KnowledgeDocument.objects.get(pk=result.document.pk)
                waiting = document.pk in pending
                line.update(document=document.pk, status=document.status, chunks=document.chunk_count,
                            pages=document.pages,
                            error=document.error or ("timed out waiting for the Celery worker" if waiting else None))
            failed |= line["status"] != KnowledgeDocument.Status.READY
            self.stdout.write(json.dumps(line))
        if failed:
            raise SystemExit(1)
